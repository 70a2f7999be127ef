//! The servers of a pool one request has tried, so that a retry goes to
//! another.

/// The servers of a pool a request has tried, by index: a set of any size
/// (pools may have more than 64 servers), without an allocation for the
/// first 64.
#[derive(Debug, Default, Clone)]
pub struct Tried {
    first: u64,
    /// Indexes from 64 on, allocated on the first of them. Boxed: the set
    /// lives in every request's context, and a small context is copied
    /// faster as pingora moves it.
    rest: Option<Box<[u64]>>,
}

impl Tried {
    pub fn insert(&mut self, i: usize) {
        match i.checked_sub(64) {
            None => self.first |= 1 << i,
            Some(j) => {
                let word = j / 64;
                let rest = self.rest.get_or_insert_with(Default::default);
                if rest.len() <= word {
                    let mut grown = rest.to_vec();
                    grown.resize(word + 1, 0);
                    *rest = grown.into_boxed_slice();
                }
                rest[word] |= 1 << (j % 64);
            }
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        match i.checked_sub(64) {
            None => self.first & (1 << i) != 0,
            Some(j) => self
                .rest
                .as_ref()
                .and_then(|r| r.get(j / 64))
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
