//! Wire names that more than one side of the protocol spells: the services that read them and
//! the clients that send them take them from here, so neither imports the other.

/// Header that asks a Registry API update to remove the properties its body does not name
/// (§9.4). Sent by `glint api` to a remote registry for an Images API update that purges.
pub const PURGE_PROPS_HEADER: &str = "x-glance-registry-purge-props";
