//! The request planner: a device's points → as few Modbus reads as possible.
//!
//! Points of one table are sorted by address and merged greedily: a read starts at the
//! first point not yet covered and takes in the following points while the read stays
//! within the device's cap (125 registers / 2000 bits by default, less for devices that
//! need it) and every hole between points is at most `max_hole` unused registers
//! (`max_hole × 16` bits for coils and discrete inputs). A point is never split across
//! two reads, so a 32-bit value is always read whole.
//!
//! Greedy is optimal here: any plan must start a read at or before the first uncovered
//! point, and extending that read as far as the rules allow never leaves more work for
//! the rest. The test `greedy_is_minimal` checks this against an exhaustive dynamic
//! programme on random layouts.
//!
//! Reading through holes fetches registers nobody asked for; some devices refuse that
//! with exception 02 (illegal data address). `max_hole = 0` turns merging across holes
//! off for such a device, and the poller falls back to per-point reads by itself when a
//! merged read is refused that way.

use std::time::Duration;

use super::profile::{Point, Table};

/// Modbus limits for one read (function 03/04: 125 registers; 01/02: 2000 bits).
pub const MAX_REGISTERS: u16 = 125;
pub const MAX_BITS: u16 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Registers per read (1..=125).
    pub max_registers: u16,
    /// Bits per read (1..=2000).
    pub max_bits: u16,
    /// Unused registers a read may span between two points.
    pub max_hole: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_registers: MAX_REGISTERS, max_bits: MAX_BITS, max_hole: 8 }
    }
}

/// One read request of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub table: Table,
    pub start: u16,
    pub count: u16,
    /// Indices (into the profile's points) of the points this read serves.
    pub points: Vec<usize>,
}

impl Request {
    /// Bytes on an RTU line: the request frame and the response frame.
    pub fn rtu_bytes(&self) -> (u32, u32) {
        let data = if self.table.is_bits() { u32::from(self.count).div_ceil(8) } else { 2 * u32::from(self.count) };
        // request: unit, function, address(2), count(2), crc(2)
        // response: unit, function, byte count, data, crc(2)
        (8, 5 + data)
    }

    /// Time this read keeps a serial line busy: both frames, the 3.5-character silence
    /// after each, and the configured gap. The device's own turnaround is not included
    /// (it is not in any data sheet; measure it with `probe`).
    pub fn line_time(&self, baud: u32, bits_per_char: u32, gap: Duration) -> Duration {
        let (req, rsp) = self.rtu_bytes();
        let chars = f64::from(req + rsp) + 7.0;
        Duration::from_secs_f64(chars * f64::from(bits_per_char) / f64::from(baud.max(1))) + gap
    }
}

/// Plans the reads for `points` under `limits`. Deterministic: same input, same plan.
pub fn plan(points: &[Point], limits: Limits) -> Vec<Request> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| (points[i].table, points[i].address, points[i].width()));
    let mut out: Vec<Request> = Vec::new();
    let mut current: Option<(Request, u32)> = None; // (request, end exclusive)
    for i in order {
        let p = &points[i];
        let (a, b) = (u32::from(p.address), u32::from(p.address) + u32::from(p.width()));
        let (cap, hole) = if p.table.is_bits() {
            (u32::from(limits.max_bits), u32::from(limits.max_hole) * 16)
        } else {
            (u32::from(limits.max_registers), u32::from(limits.max_hole))
        };
        if let Some((req, end)) = current.as_mut() {
            let start = u32::from(req.start);
            let new_end = (*end).max(b);
            if req.table == p.table && a <= *end + hole && new_end - start <= cap {
                *end = new_end;
                req.count = (new_end - start) as u16;
                req.points.push(i);
                continue;
            }
        }
        if let Some((req, _)) = current.take() {
            out.push(req);
        }
        current = Some((Request { table: p.table, start: p.address, count: p.width(), points: vec![i] }, b));
    }
    if let Some((req, _)) = current {
        out.push(req);
    }
    out
}

/// Plans one read per point: the fallback for devices that refuse reads across holes.
pub fn plan_unmerged(points: &[Point], indices: &[usize]) -> Vec<Request> {
    indices
        .iter()
        .map(|&i| Request {
            table: points[i].table,
            start: points[i].address,
            count: points[i].width(),
            points: vec![i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::profile::DataType;

    fn pt(table: Table, address: u16, dt: DataType) -> Point {
        let mut p = Point::for_test(&format!("{}{address}", table.as_str()), dt);
        p.table = table;
        p.address = address;
        p
    }

    fn spans(reqs: &[Request]) -> Vec<(Table, u16, u16)> {
        reqs.iter().map(|r| (r.table, r.start, r.count)).collect()
    }

    #[test]
    fn merges_neighbours_and_small_holes() {
        use DataType::*;
        let points = vec![
            pt(Table::Input, 0, F32),
            pt(Table::Input, 2, F32),
            pt(Table::Input, 6, F32),  // hole of 2 registers
            pt(Table::Input, 30, F32), // hole of 22: new read
            pt(Table::Holding, 0, U16),
        ];
        let limits = Limits { max_hole: 4, ..Limits::default() };
        let reqs = plan(&points, limits);
        assert_eq!(spans(&reqs), vec![(Table::Input, 0, 8), (Table::Input, 30, 2), (Table::Holding, 0, 1)]);
        assert_eq!(reqs[0].points, vec![0, 1, 2]);
        let tight = plan(&points, Limits { max_hole: 0, ..Limits::default() });
        assert_eq!(
            spans(&tight),
            vec![(Table::Input, 0, 4), (Table::Input, 6, 2), (Table::Input, 30, 2), (Table::Holding, 0, 1)]
        );
    }

    #[test]
    fn respects_the_cap_and_never_splits_a_point() {
        use DataType::*;
        // three f64 (4 registers each) back to back with a cap of 6: one point per read
        let points = vec![pt(Table::Holding, 0, F64), pt(Table::Holding, 4, F64), pt(Table::Holding, 8, F64)];
        let reqs = plan(&points, Limits { max_registers: 6, max_bits: 2000, max_hole: 0 });
        assert_eq!(spans(&reqs), vec![(Table::Holding, 0, 4), (Table::Holding, 4, 4), (Table::Holding, 8, 4)]);
        let reqs = plan(&points, Limits { max_registers: 8, max_bits: 2000, max_hole: 0 });
        assert_eq!(spans(&reqs), vec![(Table::Holding, 0, 8), (Table::Holding, 8, 4)]);
    }

    #[test]
    fn bits_of_one_register_share_a_read() {
        use DataType::*;
        let points = vec![pt(Table::Holding, 5, U16), pt(Table::Holding, 5, Bit(0)), pt(Table::Holding, 5, Bit(7))];
        let reqs = plan(&points, Limits::default());
        assert_eq!(spans(&reqs), vec![(Table::Holding, 5, 1)]);
        assert_eq!(reqs[0].points.len(), 3);
    }

    #[test]
    fn coils_use_the_bit_cap() {
        let points: Vec<Point> = (0..30).map(|a| pt(Table::Coil, a * 100, DataType::Bool)).collect();
        // holes of 99 bits: max_hole 8 → 128 bits allowed; cap 2000 bits → 20 coils per read
        let reqs = plan(&points, Limits::default());
        assert_eq!(spans(&reqs), vec![(Table::Coil, 0, 1901), (Table::Coil, 2000, 901)]);
    }

    #[test]
    fn rtu_line_time_is_modelled_from_frame_sizes() {
        let r = Request { table: Table::Input, start: 0, count: 10, points: vec![] };
        assert_eq!(r.rtu_bytes(), (8, 25));
        // (8 + 25 + 7) chars × 10 bits / 9600 baud = 41.67 ms, plus a 10 ms gap
        let t = r.line_time(9600, 10, Duration::from_millis(10));
        assert!((t.as_secs_f64() - 0.051_666).abs() < 1e-4, "{t:?}");
    }

    /// Minimum number of reads by exhaustive DP over the sorted points (a read always
    /// covers a contiguous run of them).
    fn minimum(points: &[Point], limits: Limits) -> usize {
        let mut idx: Vec<usize> = (0..points.len()).collect();
        idx.sort_by_key(|&i| (points[i].table, points[i].address, points[i].width()));
        let n = idx.len();
        let mut best = vec![usize::MAX; n + 1];
        best[0] = 0;
        for end in 1..=n {
            for start in 0..end {
                if best[start] == usize::MAX {
                    continue;
                }
                let run = &idx[start..end];
                let t = points[run[0]].table;
                if run.iter().any(|&i| points[i].table != t) {
                    continue;
                }
                let (cap, hole) = if t.is_bits() {
                    (u32::from(limits.max_bits), u32::from(limits.max_hole) * 16)
                } else {
                    (u32::from(limits.max_registers), u32::from(limits.max_hole))
                };
                let s = u32::from(points[run[0]].address);
                let mut e = s;
                let mut ok = true;
                for &i in run {
                    let (a, b) =
                        (u32::from(points[i].address), u32::from(points[i].address) + u32::from(points[i].width()));
                    if a > e + hole {
                        ok = false;
                    }
                    e = e.max(b);
                }
                if ok && e - s <= cap {
                    best[end] = best[end].min(best[start] + 1);
                }
            }
        }
        best[n]
    }

    #[test]
    fn greedy_is_minimal() {
        use DataType::*;
        let types = [U16, F32, F64, Bit(3), I32F32];
        let tables = [Table::Holding, Table::Input, Table::Coil];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..500 {
            let count = 1 + rnd(25) as usize;
            let mut points = Vec::new();
            for _ in 0..count {
                let table = tables[rnd(3) as usize];
                let dt = if table.is_bits() { Bool } else { types[rnd(5) as usize] };
                points.push(pt(table, rnd(200) as u16, dt));
            }
            let limits =
                Limits { max_registers: 4 + rnd(40) as u16, max_bits: 16 + rnd(100) as u16, max_hole: rnd(10) as u16 };
            let reqs = plan(&points, limits);
            assert_eq!(reqs.len(), minimum(&points, limits), "{limits:?}");
            // every point is served, wholly inside its read, which is within the cap
            let mut served = vec![0; points.len()];
            for r in &reqs {
                let cap = if r.table.is_bits() { limits.max_bits } else { limits.max_registers };
                assert!(r.count <= cap);
                for &i in &r.points {
                    served[i] += 1;
                    let p = &points[i];
                    assert_eq!(p.table, r.table);
                    assert!(p.address >= r.start && p.address + p.width() <= r.start + r.count);
                }
            }
            assert!(served.iter().all(|&s| s == 1));
        }
    }
}
