//! Auth: where tokens come from ([`TokenSource`]), what a token knows of its lifetime
//! ([`Token`]), how one is shared and refreshed ([`cache::TokenCache`]), and the type that keeps
//! secrets out of `Debug` ([`SensitiveString`]).

pub(crate) mod cache;
mod login;
mod secret;
mod token;

pub(crate) use cache::TokenCache;
pub(crate) use login::{PasswordLogin, StaticToken};
pub use login::{TokenFuture, TokenSource};
pub use secret::SensitiveString;
pub use token::Token;

#[cfg(test)]
mod tests;
