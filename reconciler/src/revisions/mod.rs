//! Where revisions come from, and how a loop learns that there is a new one.
//!
//! - [`git`]: a revision's files read from Git's object database (no checkout), and the revision
//!   a working tree comes from.
//! - [`remote`]: the repository the reconciler follows (https, ssh, local), fetched into a cache,
//!   and the exact commit to apply (branch, highest tag, pinned commit).
//! - [`local`]: the repository `spindle up` follows on this machine (a branch, or the working
//!   tree).
//! - [`signatures`]: whether a followed commit or tag is signed by a trusted SSH or OpenPGP key.
//! - [`watch`]: filesystem watches, debounced, that wake a loop when a ref moves or a file is
//!   saved.

pub mod git;
mod known_hosts;
pub mod local;
pub mod remote;
pub mod signatures;
pub mod watch;

pub use git::Folder;
pub use local::Local;
pub use remote::{Credentials, Fetched, Follow, Remote};
pub use signatures::{TrustSource, Trusted, Verdict};
