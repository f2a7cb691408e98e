//! Customer segments: the round trip from what the server sent ([`types::CustomerSegment`]) to
//! what a request sends ([`types::CustomerSegmentInput`]).
//!
//! An update replaces the whole segment, so what is not sent is reset: the conversion carries
//! everything over, the fields this crate does not know (`extra`, nested ones too) and enum
//! values it does not know included. It checks what the server would refuse, before anything is
//! sent, and names the field:
//!
//! ```no_run
//! use comm100::prelude::*;
//! # async fn run(c100: &comm100::Comm100, id: uuid::Uuid) -> Result<(), Box<dyn std::error::Error>> {
//! let mut segment = c100.client().get_customer_segment().id(id).call().await?;
//! segment.name = Some("VIP visitors (renamed)".into());
//! // Everything else the server sent goes back as it came.
//! c100.client().update_customer_segment().id(segment.id).body(segment).call().await?;
//! # Ok(()) }
//! ```

use crate::generated::types;

/// A segment that the server would refuse: the field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidSegment {
    /// The field, as the JSON names it, e.g. `name` or `conditions[0].value`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> InvalidSegment {
    InvalidSegment {
        field: field.into(),
        reason: reason.into(),
    }
}

impl TryFrom<types::CustomerSegment> for types::CustomerSegmentInput {
    type Error = InvalidSegment;

    /// Everything the server sent, checked as the server checks a request: a name that is not
    /// blank, at least one complete condition, a color of 6 hex digits, orders that fit.
    fn try_from(segment: types::CustomerSegment) -> Result<Self, InvalidSegment> {
        let name = segment.name.ok_or_else(|| invalid("name", "is required"))?;
        let name = types::CustomerSegmentInputName::try_from(name)
            .map_err(|_| invalid("name", "must not be blank"))?;
        let conditions = segment
            .conditions
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, c)| condition(i, c))
            .collect::<Result<Vec<_>, _>>()?;
        if conditions.is_empty() {
            return Err(invalid(
                "conditions",
                "a customer segment needs at least one condition",
            ));
        }
        let color = segment
            .color
            .map(|c| {
                types::CustomerSegmentInputColor::try_from(c.clone()).map_err(|_| {
                    invalid(
                        "color",
                        format!("must be 6 hex digits with no `#`, e.g. 339FD9, not `{c}`"),
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            name,
            conditions,
            color,
            order: segment.order.map(|o| fit("order", o)).transpose()?,
            alert_to: segment.alert_to.map(alert_to).transpose()?,
            condition_met_type: segment.condition_met_type,
            description: segment.description,
            is_enable: segment.is_enable,
            logical_expression: segment.logical_expression,
            extra: segment.extra,
        })
    }
}

fn condition(i: usize, c: types::Condition) -> Result<types::ConditionInput, InvalidSegment> {
    let at = |field: &str| format!("conditions[{i}].{field}");
    Ok(types::ConditionInput {
        field: c.field.ok_or_else(|| invalid(at("field"), "is required"))?,
        operator: c
            .operator
            .ok_or_else(|| invalid(at("operator"), "is required"))?,
        value: c.value.ok_or_else(|| invalid(at("value"), "is required"))?,
        order: c.order.map(|o| fit(&at("order"), o)).transpose()?,
        extra: c.extra,
    })
}

fn alert_to(a: types::AlertTo) -> Result<types::AlertToInput, InvalidSegment> {
    let department_ids = a
        .department_ids
        .map(|ids| {
            ids.iter()
                .enumerate()
                .map(|(i, id)| {
                    id.parse::<uuid::Uuid>().map_err(|_| {
                        invalid(
                            format!("alertTo.departmentIds[{i}]"),
                            format!("`{id}` is not a uuid"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(types::AlertToInput {
        agent_ids: a.agent_ids.map(types::AgentIds),
        department_ids: department_ids.map(types::DepartmentIds),
        extra: a.extra,
    })
}

/// An order read as an `i64` that a request sends as an `i32`.
fn fit(field: &str, order: i64) -> Result<i32, InvalidSegment> {
    i32::try_from(order).map_err(|_| invalid(field, format!("{order} does not fit in 32 bits")))
}
