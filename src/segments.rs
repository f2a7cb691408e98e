//! Customer segments: building one, comparing them, and the round trip from what the server
//! sent ([`types::CustomerSegment`]) to what a request sends ([`types::CustomerSegmentInput`]).
//!
//! A new segment is one expression: [`types::CustomerSegmentInput::new`] checks the name and
//! the conditions, and [`types::ConditionInput::new`] takes the three fields a condition needs.
//! A refusal is an [`InvalidSegment`], which names the field:
//!
//! ```
//! use comm100::generated::types::{ConditionInput, CustomerSegmentInput, KnownConditionOperator};
//!
//! let segment = CustomerSegmentInput::new(
//!     "VIP visitors",
//!     [ConditionInput::new("CurrentPageUrl", KnownConditionOperator::Contains, "/pricing")],
//! )?;
//! assert_eq!(segment.name.as_str(), "VIP visitors");
//!
//! let err = CustomerSegmentInput::new("  ", segment.conditions.clone()).unwrap_err();
//! assert_eq!((err.field.as_str(), err.to_string().as_str()), ("name", "name: must not be blank"));
//! # Ok::<(), comm100::InvalidSegment>(())
//! ```
//!
//! and it goes into a call as it is:
//!
//! ```no_run
//! use comm100::generated::types::{ConditionInput, CustomerSegmentInput, KnownConditionOperator};
//! use comm100::prelude::*;
//! # async fn run(c100: &comm100::Comm100) -> Result<(), Box<dyn std::error::Error>> {
//! let created = c100
//!     .client()
//!     .create_customer_segment()
//!     .body(CustomerSegmentInput::new(
//!         "VIP visitors",
//!         [ConditionInput::new("CurrentPageUrl", KnownConditionOperator::Contains, "/pricing")],
//!     )?)
//!     .send()
//!     .await?
//!     .into_inner();
//! # Ok(()) }
//! ```
//!
//! Every generated type compares with `==`; an open enumeration such as
//! [`types::ConditionOperator`] compares with a known value too, and [`as_str`] gives the value
//! as the JSON writes it, known or not. The read types whose fields are all optional
//! ([`types::Condition`], [`types::AlertTo`]) have a `Default`, for a value built from a few
//! fields:
//!
//! ```
//! use comm100::generated::types::{Condition, ConditionOperator, KnownConditionOperator};
//!
//! let condition = Condition {
//!     field: Some("CurrentPageUrl".into()),
//!     operator: Some(KnownConditionOperator::Contains.into()),
//!     ..Default::default()
//! };
//! let operator = condition.operator.as_ref().unwrap();
//! assert!(*operator == KnownConditionOperator::Contains);
//! assert_eq!(operator.as_str(), "contains");
//! // What a newer server may send is kept, and named as it came.
//! let other: ConditionOperator = serde_json::from_str(r#""startsWith""#).unwrap();
//! assert_eq!(other.as_str(), "startsWith");
//! assert!(other != KnownConditionOperator::Contains);
//! ```
//!
//! [`as_str`]: types::ConditionOperator::as_str
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

/// A value that the server would refuse, found before anything is sent: the field, and what is
/// wrong with it. Its `Display` is `field: reason`, e.g. `name: must not be blank` or
/// `conditions[0].value: is required`.
///
/// The checks of the generated builders and of an operation's parameters write their messages
/// in the same form (`id: "abc" is not a UUID`), so that a message reads the same wherever the
/// value was refused. `field` and `reason` are stable: match on `field`, show `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidSegment {
    /// The field as the JSON names it, with the position in a list: `name`, `color`,
    /// `conditions[0].value`, `alertTo.departmentIds[1]`; for an operation's parameter, its
    /// name in the path (`id`).
    pub field: String,
    /// What is wrong with it, in plain words; it shows the value where that is no secret and
    /// not blank.
    pub reason: String,
}

impl InvalidSegment {
    /// Reads back a message in this form (`field: reason`), as progenitor keeps it in
    /// `Error::InvalidRequest` when a body or a parameter was refused; `None` for any other
    /// text.
    // For `ApiError`'s `InvalidInput` (src/api_error.rs), which reads the field from it.
    pub(crate) fn from_message(message: &str) -> Option<Self> {
        let (field, reason) = message.split_once(": ")?;
        let name = |part: &str| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let step = |part: &str| {
            let (head, indexes) = part.split_once('[').unwrap_or((part, ""));
            name(head)
                && (indexes.is_empty()
                    || indexes.strip_suffix(']').is_some_and(|i| {
                        i.split("][")
                            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    }))
        };
        (field.split('.').all(step) && !reason.is_empty()).then(|| invalid(field, reason))
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> InvalidSegment {
    InvalidSegment {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Converts an operation's parameter, or names it and the value it was given. The generated
/// setters call it (codegen/types.rs): the value is shown before the conversion consumes it.
pub(crate) fn param<V, T>(value: V, field: &str, what: &str) -> Result<T, String>
where
    V: TryInto<T> + std::fmt::Debug,
{
    let shown = format!("{value:?}");
    value
        .try_into()
        .map_err(|_| invalid(field, format!("{shown} is not {what}")).to_string())
}

impl types::ConditionInput {
    /// A condition on a visitor field, with the three fields the server requires; `order` and
    /// the unknown fields are left out.
    ///
    /// ```
    /// use comm100::generated::types::{ConditionInput, KnownConditionOperator};
    /// let a = ConditionInput::new("CurrentPageUrl", KnownConditionOperator::Contains, "/pricing");
    /// assert_eq!(a, ConditionInput::new("CurrentPageUrl", KnownConditionOperator::Contains, "/pricing"));
    /// ```
    pub fn new(
        field: impl Into<String>,
        operator: impl Into<types::ConditionOperator>,
        value: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            operator: operator.into(),
            value: value.into(),
            order: None,
            extra: Default::default(),
        }
    }
}

impl types::CustomerSegmentInput {
    /// A segment with a name and its conditions, checked as the server checks them: the name
    /// must not be blank, and there must be at least one condition. Everything else is left
    /// out, for the server's defaults; set it on the value that this returns.
    pub fn new(
        name: impl Into<String>,
        conditions: impl IntoIterator<Item = types::ConditionInput>,
    ) -> Result<Self, InvalidSegment> {
        let name = types::CustomerSegmentInputName::try_from(name.into())
            .map_err(|e| invalid("name", e.to_string()))?;
        let conditions: Vec<_> = conditions.into_iter().collect();
        if conditions.is_empty() {
            return Err(no_condition());
        }
        Ok(Self {
            name,
            conditions,
            alert_to: None,
            color: None,
            condition_met_type: None,
            description: None,
            is_enable: None,
            logical_expression: None,
            order: None,
            extra: Default::default(),
        })
    }
}

/// The words of the generated check of `minItems` (see [`min_items`]) for `conditions`.
fn no_condition() -> InvalidSegment {
    invalid("conditions", too_few(1))
}

/// The spec's `minItems`, which typify does not enforce: `codegen/types.rs` calls this in the
/// conversion from each builder whose schema has it, so a list that is too short is refused
/// before anything is sent, as `field: reason`.
pub(crate) fn min_items<L: Items>(list: L, least: usize, field: &str) -> Result<L, String> {
    match list.count().is_some_and(|n| n < least) {
        true => Err(format!("{field}: {}", too_few(least))),
        false => Ok(list),
    }
}

/// A builder's field as it is read: one never set starts empty (see `codegen/types.rs`, which
/// keeps every builder from allocating its messages up front) and is named here.
pub(crate) fn required<T>(field: Result<T, String>, name: &str) -> Result<T, String> {
    field.map_err(|e| match e.is_empty() {
        true => format!("{name}: is required"),
        false => e,
    })
}

/// A required list, or an optional one, which is not checked when left out.
pub(crate) trait Items {
    fn count(&self) -> Option<usize>;
}

impl<T> Items for Vec<T> {
    fn count(&self) -> Option<usize> {
        Some(self.len())
    }
}

impl<T> Items for Option<Vec<T>> {
    fn count(&self) -> Option<usize> {
        self.as_ref().map(Vec::len)
    }
}

fn too_few(least: usize) -> String {
    match least {
        1 => "must hold at least one item".to_owned(),
        n => format!("must hold at least {n} items"),
    }
}

impl TryFrom<types::CustomerSegment> for types::CustomerSegmentInput {
    type Error = InvalidSegment;

    /// Everything the server sent, checked as the server checks a request: a name that is not
    /// blank, at least one complete condition, a color of 6 hex digits, orders that fit.
    fn try_from(segment: types::CustomerSegment) -> Result<Self, InvalidSegment> {
        let name = segment.name.ok_or_else(|| invalid("name", "is required"))?;
        let name = types::CustomerSegmentInputName::try_from(name)
            .map_err(|e| invalid("name", e.to_string()))?;
        let conditions = segment
            .conditions
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, c)| condition(i, c))
            .collect::<Result<Vec<_>, _>>()?;
        if conditions.is_empty() {
            return Err(no_condition());
        }
        let color = segment
            .color
            .map(|c| {
                types::CustomerSegmentInputColor::try_from(c)
                    .map_err(|e| invalid("color", e.to_string()))
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
                            format!("{id:?} is not a UUID"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_the_refusal_that_wrote_it() {
        for (field, reason) in [
            ("name", "must not be blank"),
            ("conditions[0].value", "is required"),
            ("alertTo.departmentIds[1]", "\"x\" is not a UUID"),
            ("id", "\"abc\" is not a UUID"),
            (
                "color",
                "\"#FF0000\" is not 6 hex digits with no `#`, e.g. \"339FD9\"",
            ),
        ] {
            let refusal = invalid(field, reason);
            assert_eq!(
                InvalidSegment::from_message(&refusal.to_string()),
                Some(refusal)
            );
        }
        let generated: Result<uuid::Uuid, String> = param("abc", "id", "a UUID");
        assert_eq!(
            InvalidSegment::from_message(&generated.unwrap_err()),
            Some(invalid("id", "\"abc\" is not a UUID"))
        );
        for other in [
            "customer segment: name: must not be blank",
            "the path has a dot segment",
            "conditions[x].value: is required",
            "name: ",
        ] {
            assert_eq!(InvalidSegment::from_message(other), None, "{other}");
        }
    }
}
