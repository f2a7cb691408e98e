//! The README's table of faults and modes has one row for each: a `Fault` variant and a
//! `TokenHost` mode (from their `examples()`, which cannot leave one out, and matched
//! exhaustively here), or a `Controls` method that sets a mode.

use crate::{Fault, TokenHost};

/// What names a fault in the table: its Rust path and the start of its JSON, in a code span.
fn fault_names(fault: &Fault) -> [&'static str; 2] {
    match fault {
        Fault::Status(_) => ["Fault::Status", "`{\"status\""],
        Fault::RateLimited { .. } => ["Fault::RateLimited", "`{\"rate_limited\""],
        Fault::DropBeforeHandling => ["Fault::DropBeforeHandling", "`\"drop_before_handling\"`"],
        Fault::DropAfterHandling => ["Fault::DropAfterHandling", "`\"drop_after_handling\"`"],
        Fault::OddBody { .. } => ["Fault::OddBody", "`{\"odd_body\""],
        Fault::Latency(_) => ["Fault::Latency", "`{\"latency\""],
        Fault::HugeErrorBody { .. } => ["Fault::HugeErrorBody", "`{\"huge_error_body\""],
        Fault::EndlessBody => ["Fault::EndlessBody", "`\"endless_body\"`"],
        Fault::Hang => ["Fault::Hang", "`\"hang\"`"],
        Fault::AltSuccess { .. } => ["Fault::AltSuccess", "`{\"alt_success\""],
        Fault::TruncatedBody { .. } => ["Fault::TruncatedBody", "`{\"truncated_body\""],
        Fault::Redirect { .. } => ["Fault::Redirect", "`{\"redirect\""],
    }
}

/// What names a token-host mode in the table; the normal host is the absence of a mode.
fn token_host_names(host: &TokenHost) -> Option<[&'static str; 2]> {
    match host {
        TokenHost::Normal => None,
        TokenHost::Slow(_) => Some(["TokenHost::Slow", "token-host {\"slow\""]),
        TokenHost::Refusing { .. } => Some(["TokenHost::Refusing", "token-host {\"refusing\""]),
        TokenHost::Silent => Some(["TokenHost::Silent", "token-host \"silent\""]),
        TokenHost::Redirect { .. } => Some(["TokenHost::Redirect", "token-host {\"redirect\""]),
    }
}

/// The other modes: for each, the `Controls` method and the admin route that set it.
const OTHER_MODES: &[[&str; 2]] = &[
    ["set_latency(", "/__sandbox/latency"],
    ["revoke_tokens(", "/__sandbox/revoke"],
    ["set_token_lifetime(", "/__sandbox/token-lifetime"],
    ["set_daily_limit(", "/__sandbox/daily-limit"],
    ["set_rate_limit(", "/__sandbox/rate-limit"],
    ["set_forward_compat(", "/__sandbox/forward-compat"],
    ["set_gzip(", "/__sandbox/gzip"],
    ["set_clock_offset(", "/__sandbox/clock-offset"],
    ["set_refuse_valid_tokens(", "/__sandbox/refuse-tokens"],
    ["insert_raw_segment(", "/__sandbox/segments/{site}"],
    ["seed_odd_segments(", "/__sandbox/odd-segments/{site}"],
];

/// The rows of the table under "## Faults and modes".
fn rows() -> Vec<&'static str> {
    crate::layout::readme_rows("Faults and modes")
}

fn in_one_row(rows: &[&str], name: &str) {
    let found: Vec<&&str> = rows.iter().filter(|row| row.contains(name)).collect();
    assert_eq!(found.len(), 1, "{name} in one row of the table: {found:#?}");
}

#[test]
fn every_fault_and_mode_has_one_row() {
    let rows = rows();
    let faults = Fault::examples();
    let hosts = TokenHost::examples();
    let mut names: Vec<&str> = faults.iter().flat_map(fault_names).collect();
    names.extend(hosts.iter().filter_map(token_host_names).flatten());
    names.extend(OTHER_MODES.iter().flatten());
    for name in &names {
        in_one_row(&rows, name);
    }
    // Each token host but the normal one has a row, sharing the admin route.
    let host_rows = hosts.iter().filter_map(token_host_names).count();
    let token_host_rows = rows
        .iter()
        .filter(|row| row.contains("/__sandbox/token-host"))
        .count();
    assert_eq!(token_host_rows, host_rows);
    // The faults, the token hosts and the other modes, and nothing else.
    assert_eq!(
        rows.len(),
        faults.len() + host_rows + OTHER_MODES.len(),
        "{rows:#?}"
    );
}

#[test]
fn the_json_of_each_fault_row_is_that_fault() {
    let fault_rows = rows().into_iter().filter(|row| row.contains("`Fault::"));
    let mut seen = 0;
    for row in fault_rows {
        let binary = row.trim_end_matches('|').rsplit(" | ").next().unwrap();
        let json = binary.split('`').nth(1).expect("a code span");
        let fault: Fault = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let [rust, _] = fault_names(&fault);
        assert!(row.contains(rust), "{json} is not the fault of {row}");
        seen += 1;
    }
    assert_eq!(seen, Fault::examples().len());
}

#[test]
fn the_json_of_each_token_host_row_is_that_host() {
    let host_rows = rows()
        .into_iter()
        .filter(|row| row.contains("/__sandbox/token-host "));
    let mut seen = 0;
    for row in host_rows {
        let binary = row.trim_end_matches('|').rsplit(" | ").next().unwrap();
        let span = binary.split('`').nth(1).expect("a code span");
        let json = span.split_once("token-host ").expect("the route").1;
        let host: TokenHost = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let [rust, _] = token_host_names(&host).expect("not the normal host");
        assert!(row.contains(rust), "{json} is not the token host of {row}");
        seen += 1;
    }
    let modes = TokenHost::examples()
        .iter()
        .filter_map(token_host_names)
        .count();
    assert_eq!(seen, modes);
}
