//! The wire format, as the sandbox received it: each operation's method, path, headers (all
//! but `authorization`, `host` and `content-length`, whose values vary) and JSON body. A spec
//! edit that changes what goes on the wire shows up here in review.

use std::fmt::Write;

use comm100::generated::{types, ClientCustomerSegmentsExt as _};
use comm100::Comm100;
use comm100_sandbox::{Sandbox, DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID};

#[tokio::test]
async fn every_operation_on_the_wire() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = Comm100::builder()
        .urls(sb.portal_url(), sb.api_url())
        .password_login(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID)
        .build()
        .unwrap();
    let body = types::CustomerSegmentInput::builder()
        .name("Wire")
        .color(Some(
            "00FF00"
                .parse::<types::CustomerSegmentInputColor>()
                .unwrap(),
        ))
        .is_enable(true)
        .conditions(vec![types::ConditionInput::builder()
            .field("CurrentPageUrl")
            .operator(types::KnownConditionOperator::Include)
            .value("live")
            .order(1)
            .try_into()
            .unwrap()])
        // An empty list that is set is sent, as the seed's example sends it.
        .alert_to(Some(types::AlertToInput {
            agent_ids: Some(types::AgentIds(vec![4, 5])),
            department_ids: Some(types::DepartmentIds(vec![])),
            extra: Default::default(),
        }));
    let client = c100.client();
    let id = client
        .create_customer_segment()
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .into_inner()
        .id;
    client.list_customer_segments().send().await.unwrap();
    let mut got = client
        .get_customer_segment()
        .id(id)
        .send()
        .await
        .unwrap()
        .into_inner();
    // Get, modify, put: the body is the segment read, renamed.
    got.name = Some("Wire 2".into());
    client
        .update_customer_segment()
        .id(id)
        .body(got)
        .send()
        .await
        .unwrap();
    client
        .delete_customer_segment()
        .id(id)
        .send()
        .await
        .unwrap();

    let mut wire = String::new();
    for r in ctl.requests() {
        writeln!(
            wire,
            "{} {} -> {}",
            r.method,
            r.path.replace(&id.to_string(), "{id}"),
            r.status.unwrap_or(0)
        )
        .unwrap();
        let mut headers: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-length"))
            .map(|(k, v)| {
                if k == "authorization" {
                    format!("  {k}: Bearer <token>")
                } else {
                    format!("  {k}: {v}")
                }
            })
            .collect();
        headers.sort();
        for h in headers {
            writeln!(wire, "{h}").unwrap();
        }
        if let Some(body) = &r.json() {
            writeln!(
                wire,
                "  body: {}",
                serde_json::to_string_pretty(body)
                    .unwrap()
                    .replace('\n', "\n  ")
            )
            .unwrap();
        }
        wire.push('\n');
    }
    insta::assert_snapshot!("requests", wire);
}
