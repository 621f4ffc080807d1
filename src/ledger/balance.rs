//! The balance of a zone over a period, in IWA water-balance terms (the same structure
//! serves electricity: input energy, billed, losses).
//!
//! For a zone with child zones, the children's inlets are outputs of the parent: the
//! parent's *net input* is its own inlets minus what it passes on. Then
//! `net input = billed + unbilled authorised + losses` exactly, and
//! `non-revenue = net input − billed = unbilled authorised + losses`.

use serde::Serialize;

/// The least volume a share is taken of: half a count of a meter's last decimal
/// (0.001 m³ or kWh). A parent zone whose inlet equals its children's has a net input of
/// 0, or of float noise: its shares are unknown ("—"), never 100 %.
pub const MEASURABLE: f64 = 0.0005;

/// The part of a zone's input its net input must exceed to be its own ([`Balance::share`]).
pub const RESIDUE: f64 = 1e-4;

/// `part / whole`, when the whole is a measurable volume.
pub fn share(part: f64, whole: f64) -> Option<f64> {
    (whole > MEASURABLE).then(|| part / whole)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Balance {
    /// System input volume: what the zone's inlets measured.
    pub input: f64,
    /// What went on to child zones through their inlets.
    pub transferred: f64,
    /// Billed metered consumption.
    pub billed: f64,
    /// Unbilled authorised consumption that is metered.
    pub unbilled_metered: f64,
    /// Unbilled authorised consumption that is estimated (no meter).
    pub unbilled_estimated: f64,
}

impl Balance {
    pub fn net_input(&self) -> f64 {
        self.input - self.transferred
    }

    pub fn authorised(&self) -> f64 {
        self.billed + self.unbilled_metered + self.unbilled_estimated
    }

    /// Water losses (real and apparent): net input − authorised consumption.
    pub fn losses(&self) -> f64 {
        self.net_input() - self.authorised()
    }

    /// Non-revenue water: net input − billed consumption.
    pub fn non_revenue(&self) -> f64 {
        self.net_input() - self.billed
    }

    /// A part of the net input as a share (0–1), or `None` without input of its own. A
    /// parent zone whose inlet passes everything on to its children keeps a net input of
    /// a few litres — its inlet and theirs read seconds apart, each rounded to its last
    /// digit — and 100 % of a few litres is no statement: below a ten-thousandth of what
    /// entered, the zone's net input is that residue, and its shares are unknown.
    pub fn share(&self, part: f64) -> Option<f64> {
        let net = self.net_input();
        (net > RESIDUE * self.input).then(|| share(part, net)).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_share_of_nothing() {
        assert_eq!(share(0.0, 0.0), None);
        assert_eq!(share(1e-12, 1e-12), None);
        assert_eq!(share(-3e-11, 2e-11), None);
        assert_eq!(share(1.0, 4.0), Some(0.25));
    }

    #[test]
    fn a_parent_that_passes_everything_on_has_no_share_of_its_residue() {
        // 2848.391 m³ in, 2848.390 m³ passed on: 0.9 litres of reading residue
        let b = Balance { input: 2848.391256, transferred: 2848.390337, ..Default::default() };
        assert_eq!(b.share(b.non_revenue()), None);
        // a parent that keeps 3 % of its input for its own buildings has its share
        let b = Balance { input: 1000.0, transferred: 970.0, billed: 27.0, ..Default::default() };
        assert!((b.share(b.non_revenue()).unwrap() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn a_parent_zone_passes_its_children_inlets_on() {
        let b = Balance {
            input: 1000.0,
            transferred: 820.0,
            billed: 120.0,
            unbilled_metered: 10.0,
            unbilled_estimated: 14.4,
        };
        assert_eq!(b.net_input(), 180.0);
        assert!((b.losses() - 35.6).abs() < 1e-9);
        assert!((b.non_revenue() - 60.0).abs() < 1e-9);
        assert!((b.share(b.non_revenue()).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(Balance::default().share(1.0), None);
    }

    /// The components add up to the input, whatever the numbers.
    #[test]
    fn components_always_add_up_to_the_input() {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut r = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 1_000_000) as f64 / 100.0
        };
        for _ in 0..10_000 {
            let b = Balance {
                input: r(),
                transferred: r() / 3.0,
                billed: r() / 3.0,
                unbilled_metered: r() / 10.0,
                unbilled_estimated: r() / 10.0,
            };
            let parts = b.billed + b.unbilled_metered + b.unbilled_estimated + b.losses();
            assert!((parts - b.net_input()).abs() <= 1e-9 * b.input.max(1.0), "{b:?}");
            assert!(
                (b.non_revenue() - (b.unbilled_metered + b.unbilled_estimated + b.losses())).abs()
                    <= 1e-9 * b.input.max(1.0)
            );
            assert!((b.net_input() + b.transferred - b.input).abs() <= 1e-9 * b.input.max(1.0));
        }
    }
}
