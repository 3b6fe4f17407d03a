//! The platform's own dialect: its request bodies (`request`, with the caller's tool fields in
//! `tool_fields`) and its answers and streams (`render`, with each mode's details in `details`).

pub mod details;
pub mod render;
pub mod request;
pub mod tool_fields;

pub use render::PlatformDetails;
