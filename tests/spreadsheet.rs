//! tier: full (needs openpyxl in `.venv`: `scripts/test` installs it)
//!
//! The monthly ledger opened as the office opens it: the CSV read the way Excel on
//! Chinese Windows reads it (a byte-order mark decides UTF-8), the XLSX by a spreadsheet
//! reader we did not write (openpyxl), checking what a person sees: Chinese intact, money
//! in yuan with two decimals, the non-revenue share as a percentage, local times.

mod common;

use common::pumphouse;

const READ: &str = r#"
import csv, io, json, sys
import openpyxl
out = {}
raw = open(sys.argv[1], "rb").read()
out["bom"] = raw.startswith(b"\xef\xbb\xbf")
text = raw.decode("utf-8-sig")
rows = list(csv.reader(io.StringIO(text)))
out["csv_first"] = rows[0]
head = next(i for i, r in enumerate(rows) if r and r[0] == "类别")
out["csv_head"] = rows[head]
out["csv_water"] = rows[head + 1]
wb = openpyxl.load_workbook(sys.argv[2])
out["sheets"] = wb.sheetnames
ws = wb["汇总"]
header = [c.value for c in ws[1]]
water = ws[2]
def cell(name):
    c = water[header.index(name)]
    return {"value": c.value, "format": c.number_format}
out["xlsx_share"] = cell("产销差率")
out["xlsx_revenue"] = cell("收入(元)")
out["xlsx_input"] = cell("供给量")
ms = wb["表计台账"]
mh = [c.value for c in ms[1]]
out["meter_head"] = mh
out["meter_opening_time"] = ms[2][mh.index("期初时间")].value if "期初时间" in mh else None
mp = wb["管网图"]
out["map_caption"] = mp["A1"].value
out["map_note"] = mp["A3"].value
import struct, zipfile
z = zipfile.ZipFile(sys.argv[2])
media = [n for n in z.namelist() if n.startswith("xl/media/")]
out["media"] = media
if media:
    png = z.read(media[0])
    out["png_magic"] = png[:8] == b"\x89PNG\r\n\x1a\n"
    out["png_size"] = list(struct.unpack(">II", png[16:24]))
print(json.dumps(out, ensure_ascii=False))
"#;

#[test]
fn the_monthly_files_open_right_in_a_spreadsheet_reader() {
    let python = common::python_with("openpyxl");
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::bwdf_config(dir.path());
    let fixture = common::manifest_dir().join("tests/fixtures/bwdf-2022-01.csv");
    let (code, _, err) = pumphouse(&["import", "-c", &cfg, "--csv", &fixture.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    let (csv, xlsx) = (dir.path().join("l.csv"), dir.path().join("l.xlsx"));
    for (format, path) in [("csv", &csv), ("xlsx", &xlsx)] {
        let (code, _, err) = pumphouse(&[
            "ledger",
            "-c",
            &cfg,
            "--month",
            "2022-01",
            "--format",
            format,
            "--lang",
            "zh",
            "-o",
            &path.to_string_lossy(),
        ]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = pumphouse(&["ledger", "-c", &cfg, "--month", "2022-01", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let l: serde_json::Value = serde_json::from_str(&out).unwrap();
    let water = &l["utilities"][0];
    let script = dir.path().join("read.py");
    std::fs::write(&script, READ).unwrap();
    let o = std::process::Command::new(python).arg(&script).arg(&csv).arg(&xlsx).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    // the CSV: UTF-8 announced by its mark, Chinese labels intact
    assert_eq!(seen["bom"], true);
    assert_eq!(seen["csv_first"], serde_json::json!(["站点", "bwdf", "2022-01"]));
    assert_eq!(seen["csv_head"][6], "产销差率");
    let share = water["non_revenue_share"].as_f64().unwrap();
    assert_eq!(seen["csv_water"][6].as_str().unwrap(), format!("{:.1}%", share * 100.0));
    let revenue = water["revenue_fen"].as_i64().unwrap();
    assert_eq!(seen["csv_water"][7].as_str().unwrap(), format!("{}.{:02}", revenue / 100, revenue % 100));

    // the XLSX: Chinese sheet names; the share a percentage, money at two decimals,
    // volumes at the meters' resolution; times local, without an offset
    let sheets: Vec<&str> = seen["sheets"].as_array().unwrap().iter().filter_map(|s| s.as_str()).collect();
    for want in ["汇总", "表计台账", "三个零增长"] {
        assert!(sheets.contains(&want), "{sheets:?}");
    }
    assert_eq!(seen["xlsx_share"]["format"], "0.0%");
    assert!((seen["xlsx_share"]["value"].as_f64().unwrap() - share).abs() < 1e-9);
    assert_eq!(seen["xlsx_revenue"]["format"], "#,##0.00");
    assert_eq!(seen["xlsx_revenue"]["value"].as_f64().unwrap(), revenue as f64 / 100.0);
    assert_eq!(seen["xlsx_input"]["format"], "#,##0.000");
    // the network map: a picture of the drawing `topology --format svg` makes, at twice
    // its size (fonts with the drawing's Chinese were found, or there would be a note)
    assert!(seen["map_caption"].as_str().unwrap().starts_with("管网分布图"), "{seen}");
    assert_eq!(seen["map_note"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["media"].as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(seen["png_magic"], true);
    let (code, svg, err) = pumphouse(&["topology", "-c", &cfg, "--format", "svg"]);
    assert_eq!(code, 0, "{err}");
    let attr = |name: &str| -> u64 {
        let at = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        svg[at..].split('"').next().unwrap().parse::<f64>().unwrap().round() as u64
    };
    assert_eq!(seen["png_size"], serde_json::json!([attr("width") * 2, attr("height") * 2]), "{seen}");
    let opened = seen["meter_opening_time"].as_str().unwrap_or_default();
    assert!(opened.len() == 16 && !opened.contains('+') && !opened.contains('T'), "{seen}");
}
