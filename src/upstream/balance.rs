//! Choosing a server among the available ones. Pure functions over weights
//! and counters: no HTTP, no TOML, no clock.

/// Weighted least connections: the candidate with the fewest in-flight
/// requests per unit of weight; among equals, the first at or after
/// `start` (a rotating cursor), so an idle pool still spreads load.
pub fn least_conn(
    candidates: &[usize],
    weight: impl Fn(usize) -> u32,
    in_flight: impl Fn(usize) -> i64,
    start: usize,
) -> Option<usize> {
    let n = candidates.len();
    let mut best: Option<(usize, i64, i64)> = None;
    for k in 0..n {
        let i = candidates[(start + k) % n];
        let (f, w) = (in_flight(i).max(0), i64::from(weight(i).max(1)));
        // f/w < bf/bw  <=>  f*bw < bf*w
        let better = match best {
            None => true,
            Some((_, bf, bw)) => f * bw < bf * w,
        };
        if better {
            best = Some((i, f, w));
        }
    }
    best.map(|b| b.0)
}

/// nginx's smooth weighted round-robin: every candidate's current weight
/// grows by its weight, the largest wins and is lowered by the total.
/// Weights 5:1:1 give `a a b a c a a`, not `a a a a a b c`.
pub fn smooth_wrr(
    candidates: &[usize],
    weight: impl Fn(usize) -> u32,
    current: &mut [i64],
) -> Option<usize> {
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for &i in candidates {
        let w = i64::from(weight(i).max(1));
        current[i] += w;
        total += w;
        if best.is_none_or(|b| current[i] > current[b]) {
            best = Some(i);
        }
    }
    if let Some(b) = best {
        current[b] -= total;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrr_is_smooth_and_weighted() {
        let w = [5u32, 1, 1];
        let mut cur = [0i64; 3];
        let seq: Vec<usize> = (0..7)
            .map(|_| smooth_wrr(&[0, 1, 2], |i| w[i], &mut cur).unwrap())
            .collect();
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
        let w = [1u32, 2];
        let mut cur = [0i64; 2];
        let seq: Vec<usize> = (0..6)
            .map(|_| smooth_wrr(&[0, 1], |i| w[i], &mut cur).unwrap())
            .collect();
        assert_eq!(seq, vec![1, 0, 1, 1, 0, 1], "1:2 interleaved, not bursts");
        let mut counts = [0; 2];
        for _ in 0..300 {
            counts[smooth_wrr(&[0, 1], |i| w[i], &mut cur).unwrap()] += 1;
        }
        assert_eq!(counts, [100, 200]);
    }

    #[test]
    fn wrr_over_a_subset_skips_the_others() {
        let w = [1u32, 1, 1];
        let mut cur = [0i64; 3];
        for _ in 0..10 {
            assert_ne!(smooth_wrr(&[0, 2], |i| w[i], &mut cur), Some(1));
        }
        assert_eq!(smooth_wrr(&[], |i| w[i], &mut cur), None);
    }

    #[test]
    fn least_conn_prefers_fewest_per_weight_and_rotates_ties() {
        let w = [1u32, 2, 1];
        let f = [2i64, 3, 2];
        // 2/1, 3/2, 2/1 -> server 1 (1.5)
        assert_eq!(least_conn(&[0, 1, 2], |i| w[i], |i| f[i], 0), Some(1));
        let f0 = [0i64, 0, 0];
        let picks: Vec<usize> = (0..6)
            .map(|s| least_conn(&[0, 1, 2], |_| 1, |i| f0[i], s).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2], "ties broken round-robin");
        assert_eq!(least_conn(&[], |_| 1, |_| 0, 0), None);
        // Negative (never) or huge counts do not overflow.
        assert_eq!(
            least_conn(
                &[0, 1],
                |_| 1000,
                |i| if i == 0 { i64::MAX / 2000 } else { 1 },
                0
            ),
            Some(1)
        );
    }
}
