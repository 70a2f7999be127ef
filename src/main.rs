//! The `rampart` binary: parse the command line and hand over to [`rampart::cli`].

/// mimalloc: the system allocator cost ~14% of proxy CPU in profiles
/// (see bench/README.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(rampart::cli::main());
}
