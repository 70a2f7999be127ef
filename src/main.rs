//! The `rampart` binary: parse the command line and hand over to [`rampart::cli`].

/// mimalloc: the system allocator cost ~14% of proxy CPU in profiles
/// (see bench/README.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: alloc::Mimalloc = alloc::Mimalloc;

/// mimalloc called the way the system allocator is: as plain `malloc` for
/// the alignments every mimalloc block has (a word), which are nearly all
/// of Rust's. Its aligned entry point (what the `mimalloc` crate calls for
/// every allocation) over-allocates blocks above 1 KiB whose size is not a
/// power of two, about ten per proxied request.
#[cfg(feature = "mimalloc")]
mod alloc {
    use libmimalloc_sys as mi;
    use std::alloc::{GlobalAlloc, Layout};

    /// Every mimalloc block is aligned to at least a word.
    const WORD: usize = std::mem::size_of::<usize>();

    pub struct Mimalloc;

    // SAFETY: each call hands mimalloc a layout's size, and its alignment
    // whenever that is more than the word every block has; blocks are
    // freed and resized by mimalloc, which allocated them.
    unsafe impl GlobalAlloc for Mimalloc {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let p = if l.align() <= WORD {
                mi::mi_malloc(l.size())
            } else {
                mi::mi_malloc_aligned(l.size(), l.align())
            };
            p.cast()
        }

        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            let p = if l.align() <= WORD {
                mi::mi_zalloc(l.size())
            } else {
                mi::mi_zalloc_aligned(l.size(), l.align())
            };
            p.cast()
        }

        unsafe fn dealloc(&self, p: *mut u8, _l: Layout) {
            mi::mi_free(p.cast())
        }

        unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            let p = if l.align() <= WORD {
                mi::mi_realloc(p.cast(), new_size)
            } else {
                mi::mi_realloc_aligned(p.cast(), new_size, l.align())
            };
            p.cast()
        }
    }
}

fn main() {
    std::process::exit(rampart::cli::main());
}

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    #[test]
    fn blocks_have_their_alignment_and_keep_their_bytes_when_resized() {
        let a = super::alloc::Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 8, 12, 24, 40, 1000, 1500, 3000, 70_000] {
                let l = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; each block is freed with its layout.
                unsafe {
                    let p = a.alloc(l);
                    assert!(
                        !p.is_null() && (p as usize).is_multiple_of(align),
                        "{size}/{align}"
                    );
                    std::ptr::write_bytes(p, 0xab, size);
                    let q = a.realloc(p, l, size * 3);
                    assert!(
                        !q.is_null() && (q as usize).is_multiple_of(align),
                        "{size}/{align} grown"
                    );
                    assert!((0..size).all(|i| *q.add(i) == 0xab), "{size}/{align} kept");
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = a.alloc_zeroed(l);
                    assert!(
                        (z as usize).is_multiple_of(align) && (0..size).all(|i| *z.add(i) == 0)
                    );
                    a.dealloc(z, l);
                }
            }
        }
    }
}
