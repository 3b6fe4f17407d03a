//! `spin:variables` and `wasi:config/store`: values from `SPIN_VARIABLE_<NAME>`, then manifest
//! defaults, through component templates; the core's `var("NAME")` reads variable `name`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{probe_manifest, scratch, SpinHost};

const VARIABLES: &str = r#"
api_key = { default = "", secret = true }
greeting = { default = "hello" }
token = { required = true }
empty = { default = "" }
"#;

const PROBE_VARIABLES: &str = r#"
[component.probe.variables]
api_key = "{{ api_key }}"
greeting = "{{ greeting }} there"
token = "{{token}}"
empty = "{{ empty }}"
"#;

#[test]
fn values_come_from_the_environment_then_manifest_defaults() {
    let dir = scratch("vars-env");
    let manifest = probe_manifest(&dir, VARIABLES, PROBE_VARIABLES);
    let host =
        SpinHost::start(&manifest, &[("SPIN_VARIABLE_API_KEY", "sk-test-123"), ("SPIN_VARIABLE_TOKEN", "t0k")], &[]);
    // Host::var takes the core's upper-case name (wasi:config underneath).
    assert_eq!(host.get("/var/API_KEY").text(), "sk-test-123");
    assert_eq!(host.get("/var/GREETING").text(), "hello there");
    assert_eq!(host.get("/var/TOKEN").text(), "t0k");
    // The same values through spin:variables.
    assert_eq!(host.get("/spin-var/greeting").text(), "hello there");
    assert_eq!(host.get("/spin-var/api_key").text(), "sk-test-123");
}

#[test]
fn empty_and_undeclared_variables_are_unset() {
    let dir = scratch("vars-unset");
    let manifest = probe_manifest(&dir, VARIABLES, PROBE_VARIABLES);
    let host = SpinHost::start(&manifest, &[("SPIN_VARIABLE_TOKEN", "x")], &[]);
    assert_eq!(host.get("/var/EMPTY").status, 404);
    assert_eq!(host.get("/var/API_KEY").status, 404);
    assert_eq!(host.get("/var/NOT_DECLARED").status, 404);
    let spin = host.get("/spin-var/empty");
    assert_eq!((spin.status, spin.text().as_str()), (200, ""));
    let undefined = host.get("/spin-var/not_declared");
    assert_eq!(undefined.status, 404);
    assert!(undefined.text().contains("Undefined"), "{}", undefined.text());
    // A component sees only its own variables: `special` declares none.
    assert_eq!(host.get("/special/var/GREETING").status, 404);
}

#[test]
fn a_required_variable_without_a_value_stops_startup() {
    let dir = scratch("vars-required");
    let manifest = probe_manifest(&dir, VARIABLES, PROBE_VARIABLES);
    let log = SpinHost::try_start(&manifest, &[], &[]).err().expect("spin-host must refuse to start");
    assert!(log.contains("SPIN_VARIABLE_TOKEN"), "{log}");
}
