use super::*;

const GOOD: &str = r#"
name: t
seed: 7
duration: 60s
target: {lab: true}
users:
  count: 200
load:
  sessions: 50
  ramp_up: 5s
mix:
  - idler: {weight: 3}
  - reader: {weight: 4, think: {exponential: {mean: 1s}}}
  - writer: {weight: 1, size: {lognormal: {median: 4KiB, sigma: 1.0, max: 1MiB}}}
delivery:
  lmtp: {rate: 5/s, recipients: {uniform: {min: 1, max: 3}}}
thresholds:
  imap.fetch: "p99 < 50ms"
"#;

fn invalid(yaml: &str) -> (u64, u64, String) {
    match load_str(yaml, Some("s.yaml")) {
        Err(ScenarioError::Invalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected an invalid scenario, got {other:?}"),
    }
}

#[test]
fn good_scenario_loads() {
    let loaded = load_str(GOOD, Some("s.yaml")).unwrap();
    let s = &loaded.scenario;
    assert_eq!(s.seed, 7);
    assert_eq!(s.users.count.value, 200);
    assert_eq!(s.mix.len(), 3);
    assert_eq!(s.mix[1].value.name(), "reader");
    assert_eq!(s.duration.value.0.as_secs(), 60);
    assert!(s.has_ramps());
    assert_eq!(loaded.digest.len(), 64);
}

#[test]
fn digest_ignores_formatting_but_not_values() {
    let a = load_str(GOOD, None).unwrap().digest;
    let reformatted = GOOD.replace("seed: 7", "seed:   7   # comment");
    assert_eq!(load_str(&reformatted, None).unwrap().digest, a);
    let changed = GOOD.replace("seed: 7", "seed: 8");
    assert_ne!(load_str(&changed, None).unwrap().digest, a);
}

#[test]
fn unknown_key_names_line_and_column() {
    let yaml = GOOD.replace("  count: 200", "  count: 200\n  cuont: 3");
    let (line, column, message) = invalid(&yaml);
    assert_eq!((line, column), (8, 3), "{message}");
    assert!(message.contains("cuont"), "{message}");
}

#[test]
fn string_where_number_belongs_names_line_and_column() {
    let yaml = GOOD.replace("count: 200", "count: many");
    let (line, column, message) = invalid(&yaml);
    assert_eq!((line, column), (7, 10), "{message}");
    assert!(
        !message.contains("at line"),
        "location is not repeated: {message}"
    );
}

#[test]
fn duration_without_unit_is_refused() {
    let yaml = GOOD.replace("duration: 60s", "duration: 60");
    let (line, _, message) = invalid(&yaml);
    assert_eq!(line, 4);
    assert!(message.contains("no unit"), "{message}");
}

#[test]
fn yes_is_not_a_boolean() {
    let yaml = GOOD.replace("{lab: true}", "{lab: yes}");
    let (line, _, _) = invalid(&yaml);
    assert_eq!(line, 5);
}

#[test]
fn semantic_errors_carry_a_location() {
    let yaml = GOOD.replace("sessions: 50", "sessions: 500");
    let (line, _, message) = invalid(&yaml);
    assert_eq!(line, 9);
    assert!(message.contains("more than users.count"), "{message}");

    let yaml = GOOD.replace(
        "{weight: 3}",
        "{weight: 3, idle_for: {uniform: {min: 9s, max: 1s}}}",
    );
    let (line, _, message) = invalid(&yaml);
    assert_eq!(line, 12);
    assert!(message.contains("min"), "{message}");
}

#[test]
fn display_has_file_line_column_and_hint() {
    let yaml = GOOD.replace("name: t", "name: t\nnmae: u");
    let err = load_str(&yaml, Some("s.yaml")).unwrap_err().to_string();
    assert!(err.starts_with("s.yaml:3:1: "), "{err}");
    assert!(err.contains("hint:"), "{err}");
}
