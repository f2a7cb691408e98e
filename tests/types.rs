//! Types that compare and build: `==` on the generated types, `as_str` and comparison with a
//! known value on the open enums, `Default` below the top level, the constructors, and
//! validation messages that read the same wherever a value was refused. Against the sandbox,
//! over real HTTP; what was sent comes from its request log.

mod common;

use comm100::generated::types::{
    self, AlertTo, Condition, ConditionInput, ConditionOperator, CustomerSegmentInput,
    KnownConditionMetType, KnownConditionOperator,
};
use comm100::prelude::*;
use comm100::InvalidSegment;
use comm100_sandbox::{Route, DEFAULT_SITE_ID};
use common::{count, logged_in, segment};

/// A segment as the server has it now.
async fn get(c100: &comm100::Comm100, id: uuid::Uuid) -> types::CustomerSegment {
    let got = c100.client().get_customer_segment().id(id).send().await;
    got.unwrap().into_inner()
}

/// Creates a segment; the server's answer.
async fn create<B>(c100: &comm100::Comm100, body: B) -> types::CustomerSegment
where
    B: TryInto<CustomerSegmentInput>,
    B::Error: std::fmt::Display,
{
    let created = c100
        .client()
        .create_customer_segment()
        .body(body)
        .send()
        .await;
    created.unwrap().into_inner()
}

fn pricing() -> ConditionInput {
    ConditionInput::new(
        "CurrentPageUrl",
        KnownConditionOperator::Contains,
        "/pricing",
    )
}

#[test]
fn two_conditions_compare_with_eq() {
    assert_eq!(pricing(), pricing());
    assert_ne!(
        pricing(),
        ConditionInput {
            value: "/about".into(),
            ..pricing()
        }
    );
    let read = Condition {
        field: Some("CurrentPageUrl".into()),
        operator: Some(KnownConditionOperator::Contains.into()),
        value: Some("/pricing".into()),
        ..Default::default()
    };
    assert_eq!(read.clone(), read);
    assert_ne!(
        Condition {
            order: Some(2),
            ..read.clone()
        },
        read
    );
}

#[test]
fn open_enums_compare_with_known_values_and_name_themselves() {
    let known = ConditionOperator::from(KnownConditionOperator::IsNot);
    assert!(known == KnownConditionOperator::IsNot);
    assert!(KnownConditionOperator::IsNot == known);
    assert!(known != KnownConditionOperator::Is);
    // The wire string is what serde writes, for every known value.
    for op in [
        KnownConditionOperator::Is,
        KnownConditionOperator::IsNot,
        KnownConditionOperator::RegularExpression,
        KnownConditionOperator::Include,
    ] {
        let wire = serde_json::to_value(op).unwrap();
        assert_eq!(Some(op.as_str()), wire.as_str());
        assert_eq!(ConditionOperator::from(op).as_str(), op.as_str());
    }
    let other: ConditionOperator = serde_json::from_value("startsWith".into()).unwrap();
    assert_eq!(other.as_str(), "startsWith");
    assert!(other != KnownConditionOperator::Is);
    let met: types::ConditionMetType = serde_json::from_value("any".into()).unwrap();
    assert!(met == KnownConditionMetType::Any);
    assert_eq!(met.as_str(), KnownConditionMetType::Any.as_str());
}

#[tokio::test]
async fn a_segment_read_twice_compares_equal_and_its_operator_without_matches() {
    let (_sb, _ctl, c100) = logged_in().await;
    let created = create(
        &c100,
        CustomerSegmentInput::new("compared", [pricing()]).unwrap(),
    )
    .await;
    let (first, second) = (get(&c100, created.id).await, get(&c100, created.id).await);
    assert_eq!(first, second);
    assert_eq!(first, created);
    let listed = c100.client().list_customer_segments().send().await;
    let listed = listed.unwrap().into_inner();
    assert!(listed.contains(&first));

    let condition = &first.conditions.as_ref().unwrap()[0];
    assert!(condition.operator.as_ref().unwrap() == &KnownConditionOperator::Contains);
    assert_eq!(
        condition.operator,
        Some(KnownConditionOperator::Contains.into())
    );
}

#[tokio::test]
async fn a_segment_builds_in_one_expression_and_sends_what_it_says(
) -> Result<(), Box<dyn std::error::Error>> {
    let (_sb, ctl, c100) = logged_in().await;
    // As a user writes it: no builder, no `try_into`, no `ConversionError`.
    let created = c100
        .client()
        .create_customer_segment()
        .body(CustomerSegmentInput::new(
            "VIP visitors",
            [ConditionInput::new(
                "CurrentPageUrl",
                KnownConditionOperator::Contains,
                "/pricing",
            )],
        )?)
        .send()
        .await?
        .into_inner();
    let sent = ctl
        .requests()
        .into_iter()
        .find(|r| r.route == Some(Route::Create))
        .and_then(|r| r.json())
        .expect("the create was logged with its body");
    let expected = CustomerSegmentInput::new("VIP visitors", [pricing()]).unwrap();
    assert_eq!(sent, serde_json::to_value(&expected).unwrap());
    // Only the two fields given are sent: the server's defaults apply to the rest.
    assert_eq!(
        sent.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["conditions", "name"]
    );
    assert_eq!(created.name.as_deref(), Some("VIP visitors"));
    let condition = &created.conditions.unwrap()[0];
    assert_eq!(
        Condition {
            order: None,
            ..condition.clone()
        },
        Condition {
            field: Some(expected.conditions[0].field.clone()),
            operator: Some(expected.conditions[0].operator.clone()),
            value: Some(expected.conditions[0].value.clone()),
            ..Default::default()
        }
    );
    Ok(())
}

#[tokio::test]
async fn get_modify_put_below_the_top_level_with_default() {
    let (_sb, _ctl, c100) = logged_in().await;
    let id = create(&c100, segment("nested")).await.id;
    let mut read = get(&c100, id).await;
    let added = Condition {
        field: Some("Country".into()),
        operator: Some(KnownConditionOperator::Is.into()),
        value: Some("NZ".into()),
        ..Default::default()
    };
    read.conditions
        .get_or_insert_with(Vec::new)
        .push(added.clone());
    read.alert_to = Some(AlertTo {
        agent_ids: Some(vec![4, 5]),
        ..Default::default()
    });
    let updated = c100
        .client()
        .update_customer_segment()
        .id(id)
        .body(read.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    let conditions = updated.conditions.clone().unwrap();
    assert_eq!(conditions.len(), 2);
    // The server numbers the new condition; everything else is what was put.
    assert_eq!(
        Condition {
            order: None,
            ..conditions[1].clone()
        },
        added
    );
    assert_eq!(conditions[0], read.conditions.unwrap()[0]);
    assert_eq!(updated.alert_to.and_then(|a| a.agent_ids), Some(vec![4, 5]));
}

/// The message in `Error::InvalidRequest`, which is what `send` says when it refused to send.
fn refused<T: std::fmt::Debug>(
    result: Result<T, progenitor_client::Error<types::Error>>,
) -> String {
    match result {
        Err(progenitor_client::Error::InvalidRequest(message)) => message,
        other => panic!("expected a local refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_reads_the_same_from_the_builder_the_constructor_and_a_read_segment() {
    let (_sb, ctl, c100) = logged_in().await;
    let odd = ctl.seed_odd_segments(DEFAULT_SITE_ID);
    ctl.clear_requests();

    // A blank name, three ways.
    let constructed = CustomerSegmentInput::new("   ", [pricing()]).unwrap_err();
    assert_eq!(constructed.field, "name");
    let built = refused(
        c100.client()
            .create_customer_segment()
            .body(segment("   "))
            .send()
            .await,
    );
    let blank = get(&c100, odd[1]).await;
    let converted = CustomerSegmentInput::try_from(blank.clone()).unwrap_err();
    let sent_back = refused(
        c100.client()
            .update_customer_segment()
            .id(odd[1])
            .body(blank)
            .send()
            .await,
    );
    assert_eq!(constructed, converted);
    assert_eq!(built, constructed.to_string());
    assert_eq!(sent_back, constructed.to_string());
    assert_eq!(constructed.to_string(), "name: must not be blank");

    // A color: named with the value, by the type and by the conversion of what was read.
    let color = get(&c100, odd[0]).await;
    let shown = color.color.clone().unwrap();
    let converted = CustomerSegmentInput::try_from(color).unwrap_err();
    let parsed = shown
        .parse::<types::CustomerSegmentInputColor>()
        .unwrap_err();
    assert_eq!(
        converted,
        InvalidSegment {
            field: "color".into(),
            reason: parsed.to_string(),
        }
    );
    assert!(
        converted.reason.contains(&format!("{shown:?}")),
        "{converted}"
    );

    // No conditions: the constructor and the conversion agree.
    let none = CustomerSegmentInput::new("no conditions", []).unwrap_err();
    assert_eq!(none.field, "conditions");
    let nulls = get(&c100, odd[2]).await;
    assert_eq!(CustomerSegmentInput::try_from(nulls).unwrap_err(), none);

    // A required field never set, by its name on the wire.
    let unnamed = types::CustomerSegmentInput::builder().conditions(vec![pricing()]);
    let missing = refused(
        c100.client()
            .create_customer_segment()
            .body(unnamed)
            .send()
            .await,
    );
    assert_eq!(missing, "name: is required");

    // A bad id: the parameter and the value.
    let bad_id = refused(c100.client().get_customer_segment().id("abc").send().await);
    assert_eq!(bad_id, r#"id: "abc" is not a UUID"#);
    let no_id = refused(c100.client().delete_customer_segment().send().await);
    assert_eq!(no_id, "id: is required");

    let sent = ctl.requests().len();
    assert_eq!(
        sent,
        count(&ctl, Route::Get),
        "only the reads were sent: {:?}",
        ctl.requests()
    );
}
