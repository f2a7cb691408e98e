//! Creates without doubt: a create whose outcome is unknown (the answer was lost, the server
//! failed with a `5xx`, the budget ran out) is resolved by reading the site's segments once and
//! looking for the one that was sent.
//!
//! Comm100 v3 has no idempotency key, and this crate puts no marker into the user's data, so
//! the segment is recognised by a fingerprint of what was sent: every field the request set, with
//! the server's documented defaults applied to those it left out (`color` `339FD9`, `isEnable`
//! false, `conditionMetType` `all`), compared with what the server holds. Fields the request did
//! not set (the `order` the server assigns, its ids) are not compared. Names are not documented
//! as unique, so two matches are a real answer: [`CreateOutcome::Ambiguous`].

use serde_json::{Map, Value};

use crate::generated::{types, ClientCustomerSegmentsExt as _};
use crate::{ApiError, Comm100, Outcome};

/// The server's defaults for fields a create leaves out (`docs/reference/`: color
/// `339FD9`, `isEnable` false, `conditionMetType` `all`).
fn server_defaults() -> [(&'static str, Value); 3] {
    [
        ("color", Value::from("339FD9")),
        ("isEnable", Value::from(false)),
        ("conditionMetType", Value::from("all")),
    ]
}

/// What became of a create made with [`Comm100::create_customer_segment_reconciled`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CreateOutcome {
    /// The server answered the create; here is the segment it returned.
    Created(types::CustomerSegment),
    /// The create failed after it may have reached the server, and exactly one segment on the
    /// site matches what was sent: that one. The error is the create's.
    FoundAfterFailure {
        /// The segment found.
        segment: types::CustomerSegment,
        /// The error the create itself got.
        error: ApiError,
    },
    /// The create was not carried out: refused or never sent, or it failed after it may have
    /// reached the server and no segment on the site matches what was sent. Creating again is
    /// safe; [`ApiError::is_retryable`] on the error says whether it may succeed now.
    NotCreated(ApiError),
    /// The create failed after it may have reached the server, and more than one segment on the
    /// site matches what was sent: one may be the create's, or none (a twin that was there
    /// before). Nothing tells them apart.
    Ambiguous {
        /// The matching segments, in the order the server listed them.
        candidates: Vec<types::CustomerSegment>,
        /// The error the create itself got.
        error: ApiError,
    },
}

impl CreateOutcome {
    /// The segment, when the create is known to have happened: [`CreateOutcome::Created`] or
    /// [`CreateOutcome::FoundAfterFailure`].
    pub fn segment(&self) -> Option<&types::CustomerSegment> {
        match self {
            CreateOutcome::Created(segment) | CreateOutcome::FoundAfterFailure { segment, .. } => {
                Some(segment)
            }
            _ => None,
        }
    }
}

impl Comm100 {
    /// Creates a customer segment, and resolves a create whose outcome is unknown.
    ///
    /// The create is sent once, as by `create_customer_segment()` (the retry rules never send it
    /// twice once it may have reached the server). When it fails with [`Outcome::Unknown`] or
    /// [`Outcome::Performed`], the site's segments are listed once and searched for the one
    /// sent (see the module docs for how it is recognised), which gives
    /// [`CreateOutcome::FoundAfterFailure`], [`CreateOutcome::NotCreated`] or
    /// [`CreateOutcome::Ambiguous`]. A refusal or a failure before sending is
    /// [`CreateOutcome::NotCreated`] without a list.
    ///
    /// `Err` is an invalid `segment` (nothing sent); a create whose outcome stays unknown
    /// because the list failed too (the create's error, with the list's in the log); or a
    /// create the server answered with success whose segment is not on the list (changed since
    /// by another writer).
    ///
    /// ```no_run
    /// use comm100::prelude::*;
    /// # async fn run(c100: &Comm100) -> Result<(), Box<dyn std::error::Error>> {
    /// let pricing = types::ConditionInput::new(
    ///     "CurrentPageUrl",
    ///     types::KnownConditionOperator::Contains,
    ///     "/pricing",
    /// );
    /// let segment = types::CustomerSegmentInput::new("VIP visitors", [pricing])?;
    /// match c100.create_customer_segment_reconciled(segment).await? {
    ///     CreateOutcome::Created(s) | CreateOutcome::FoundAfterFailure { segment: s, .. } => {
    ///         println!("created {}", s.id)
    ///     }
    ///     CreateOutcome::NotCreated(e) => eprintln!("not created: {e}"),
    ///     CreateOutcome::Ambiguous { candidates, .. } => {
    ///         eprintln!("{} segments look like it", candidates.len())
    ///     }
    ///     _ => {}
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn create_customer_segment_reconciled<B>(
        &self,
        segment: B,
    ) -> Result<CreateOutcome, ApiError>
    where
        B: TryInto<types::CustomerSegmentInput>,
        B::Error: std::fmt::Display,
    {
        let refused = |e: &dyn std::fmt::Display| {
            ApiError::invalid_input(e.to_string(), Some("create_customer_segment"))
        };
        let input: types::CustomerSegmentInput = segment.try_into().map_err(|e| refused(&e))?;
        let sent = serde_json::to_value(&input).map_err(|e| refused(&e))?;
        let error = match self
            .client()
            .create_customer_segment()
            .body(input)
            .call()
            .await
        {
            Ok(created) => return Ok(CreateOutcome::Created(created)),
            Err(error) => error,
        };
        if !error.outcome().may_have_acted() {
            return Ok(CreateOutcome::NotCreated(error));
        }
        let listed = match self.client().list_customer_segments().call().await {
            Ok(listed) => listed,
            Err(list_error) => {
                tracing::warn!(
                    error = %list_error,
                    "the list that would resolve a create of unknown outcome failed; the outcome stays unknown"
                );
                return Err(error);
            }
        };
        let wanted = fingerprint(&sent);
        let mut candidates: Vec<types::CustomerSegment> = listed
            .into_iter()
            .filter(|segment| {
                serde_json::to_value(segment).is_ok_and(|held| matches(&wanted, &held, true))
            })
            .collect();
        tracing::info!(
            candidates = candidates.len(),
            outcome = error.outcome().as_str(),
            "resolved a create of unknown outcome by listing the site's segments"
        );
        Ok(match candidates.len() {
            // The server said it created it, yet nothing matches: a writer changed it since.
            0 if error.outcome() == Outcome::Performed => return Err(error),
            0 => CreateOutcome::NotCreated(error),
            1 => CreateOutcome::FoundAfterFailure {
                segment: candidates.remove(0),
                error,
            },
            _ => CreateOutcome::Ambiguous { candidates, error },
        })
    }
}

/// What was sent, with the server's defaults for what it left out, and without `null`s.
fn fingerprint(sent: &Value) -> Value {
    let mut canonical = strip_nulls(sent);
    if let Value::Object(map) = &mut canonical {
        for (key, default) in server_defaults() {
            map.entry(key).or_insert(default);
        }
    }
    canonical
}

fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Whether `held` has every field of `wanted` with the same value: objects field by field (the
/// fields `held` has beyond `wanted`'s are not compared), arrays element by element and of the
/// same length, `color` without regard to case.
fn matches(wanted: &Value, held: &Value, top: bool) -> bool {
    match (wanted, held) {
        (Value::Object(w), Value::Object(h)) => w.iter().all(|(key, w)| {
            let h = h.get(key).unwrap_or(&Value::Null);
            match (top && key == "color", w, h) {
                (true, Value::String(w), Value::String(h)) => w.eq_ignore_ascii_case(h),
                _ => matches(w, h, false),
            }
        }),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(w, h)| matches(w, h, false))
        }
        (w, h) => w == h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_segment_matches_what_was_sent_with_the_server_defaults() {
        let sent = json!({"name": "VIP", "conditions": [{"field": "f", "operator": "is", "value": "v"}], "description": null});
        let wanted = fingerprint(&sent);
        let held = json!({"id": "x", "name": "VIP", "order": 3, "color": "339fd9", "isEnable": false,
            "conditionMetType": "all", "description": "",
            "conditions": [{"id": "c", "field": "f", "operator": "is", "value": "v"}]});
        assert!(matches(&wanted, &held, true));
        for differs in [
            json!({"name": "VIP ", "color": "339FD9", "isEnable": false, "conditionMetType": "all", "conditions": [{"field": "f", "operator": "is", "value": "v"}]}),
            json!({"name": "VIP", "color": "000000", "isEnable": false, "conditionMetType": "all", "conditions": [{"field": "f", "operator": "is", "value": "v"}]}),
            json!({"name": "VIP", "color": "339FD9", "isEnable": true, "conditionMetType": "all", "conditions": [{"field": "f", "operator": "is", "value": "v"}]}),
            json!({"name": "VIP", "color": "339FD9", "isEnable": false, "conditionMetType": "all", "conditions": []}),
            json!({"name": "VIP", "color": "339FD9", "isEnable": false, "conditionMetType": "all", "conditions": [{"field": "f", "operator": "is", "value": "v"}, {"field": "f", "operator": "is", "value": "w"}]}),
        ] {
            assert!(!matches(&wanted, &differs, true), "{differs}");
        }
    }
}
