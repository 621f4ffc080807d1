//! The systemd unit starts as documented: `systemd-analyze verify` accepts it, it runs as a
//! dynamic user that can read its configuration directory and write its state directory,
//! and it is sandboxed.

mod common;

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed() {
    let unit_path = common::manifest_dir().join("deploy/pumphouse.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let has = |line: &str| unit.lines().any(|l| l.trim() == line);
    for line in [
        "DynamicUser=yes",
        "ConfigurationDirectory=pumphouse",
        "StateDirectory=pumphouse",
        "SupplementaryGroups=dialout",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "After=network-online.target time-sync.target",
    ] {
        assert!(has(line), "the unit lacks `{line}`");
    }
    // the documented install leaves the configuration readable by the dynamic user
    assert!(unit.contains("install -m 0644 config/pumphouse.example.toml /etc/pumphouse/pumphouse.toml"));
    assert!(!unit.contains("install -d -m 0750 /etc/pumphouse"), "a root-only /etc/pumphouse locks the service out");

    // systemd-analyze checks the unit's syntax and that its commands exist: point them at
    // the binary under test
    let analyze = common::require("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("pumphouse.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/pumphouse", env!("CARGO_BIN_EXE_pumphouse"))).unwrap();
    let out = std::process::Command::new(analyze).arg("verify").arg(&copy).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    let relevant: Vec<&str> = stderr.lines().filter(|l| l.contains("pumphouse.service")).collect();
    assert!(relevant.is_empty(), "systemd-analyze verify complains: {relevant:#?}");
}
