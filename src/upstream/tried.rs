//! The servers of a pool one request has tried, so that a retry goes to
//! another.

/// The servers of a pool a request has tried, by index: a set of any size
/// (pools may have more than 64 servers), without an allocation for the
/// first 64.
#[derive(Debug, Default, Clone)]
pub struct Tried {
    first: u64,
    rest: Vec<u64>,
}

impl Tried {
    pub fn insert(&mut self, i: usize) {
        match i.checked_sub(64) {
            None => self.first |= 1 << i,
            Some(j) => {
                let word = j / 64;
                if self.rest.len() <= word {
                    self.rest.resize(word + 1, 0);
                }
                self.rest[word] |= 1 << (j % 64);
            }
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        match i.checked_sub(64) {
            None => self.first & (1 << i) != 0,
            Some(j) => self
                .rest
                .get(j / 64)
                .is_some_and(|w| w & (1 << (j % 64)) != 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tried_is_a_set_beyond_64_servers() {
        let mut t = Tried::default();
        for i in [0, 63, 64, 127, 128, 200] {
            assert!(!t.contains(i));
            t.insert(i);
            assert!(t.contains(i));
        }
        // The old `% 64` bit set took 64 for 0 and 129 for 1.
        assert!(!t.contains(1) && !t.contains(129) && !t.contains(65));
        assert!(!t.contains(10_000));
    }
}
