//! Lever backends that need nothing but files and processes (`env`,
//! `command`), and the router that sends each lever to the backend of its
//! kind. The `postgres` and `container` backends are adapters over the
//! postgres/ and docker/ modules, plugged into the router by the CLI.

pub mod command;
pub mod container;
pub mod env;
pub mod postgres;
pub mod router;
pub mod run;

pub use command::CommandLevers;
pub use container::ContainerLevers;
pub use env::EnvLevers;
pub use postgres::PostgresLevers;
pub use router::Router;
