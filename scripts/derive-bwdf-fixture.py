#!/usr/bin/env python3
"""Derives tests/fixtures/bwdf-2022-01.csv from the BWDF 2024 inflow data.

Source: Alvisi, S., Franchini, M., Marsili, V., Mazzoni, F., Salomons, E., Housh, M., et al.
(2025), "Battle of Water Demand Forecasting", Journal of Water Resources Planning and
Management (ASCE), doi 10.1061/JWRMD5.WRENG-6887 — hourly net inflow of real district
metered areas of an Italian utility, licensed CC BY 4.0.

The fixture turns the hourly inflows (L/s) of DMA 4, 6 and 8 from 2021-12-25 to
2022-02-07 (CET, UTC+1 throughout) into totalizer readings in m3, as an inflow meter
would report them at each hour: the totalizer counts every hour, with hours the data set
lacks filled by linear interpolation, but no reading is emitted for those hours (the
data set's real gaps become the gateway's gaps). It also prints the true January volume
of each DMA (the totalizer difference), which the ledger test expects.

Usage: scripts/derive-bwdf-fixture.py ../shared/data/bwdf/InflowData.csv
"""
import csv
import sys
from datetime import datetime, timedelta

DMAS = [4, 6, 8]
START = datetime(2021, 12, 25)
END = datetime(2022, 2, 8)

rows = list(csv.reader(open(sys.argv[1])))[1:]
series = {d: [] for d in DMAS}
for r in rows:
    t = datetime.strptime(r[0], "%d/%m/%Y %H:%M")
    if START <= t < END:
        for d in DMAS:
            series[d].append((t, float(r[d]) if r[d] else None))

out = csv.writer(open("tests/fixtures/bwdf-2022-01.csv", "w", newline=""))
out.writerow(["ts", "device", "point", "value"])
truth = {}
for d in DMAS:
    vals = [v for _, v in series[d]]
    filled = list(vals)
    for i, v in enumerate(vals):
        if v is None:
            a = next((j for j in range(i - 1, -1, -1) if vals[j] is not None), None)
            b = next((j for j in range(i + 1, len(vals)) if vals[j] is not None), None)
            if a is not None and b is not None:
                filled[i] = vals[a] + (vals[b] - vals[a]) * (i - a) / (b - a)
            else:
                filled[i] = vals[a] if a is not None else vals[b]
    total = 1000.0
    at = {}
    for (t, v), f in zip(series[d], filled):
        # the reading at t closes the hour that started at t - 1h (hourly mean flow f)
        total += f * 3.6
        end = t + timedelta(hours=1)
        at[end] = total
        if v is not None:
            out.writerow([end.strftime("%Y-%m-%dT%H:%M:00+01:00"), f"dma-{d}", "positive_total", f"{total:.3f}"])
    truth[d] = round(at[datetime(2022, 2, 1)] - at[datetime(2022, 1, 1)], 3)
    missing = sum(1 for t, v in series[d] if v is None and datetime(2022, 1, 1) <= t < datetime(2022, 2, 1))
    print(f"dma-{d}: January 2022 volume {truth[d]} m3, {missing} hours missing in January")
