//! Machinery for section 3: the cart's value type, how a client resolves
//! siblings, and how a version set is printed.

use dsys_clocks::Siblings;

/// A cart: its items in the order they were first added.
pub(super) type Cart = Vec<&'static str>;

/// `dot {items}` for every sibling.
pub(super) fn show_versions(cart: &Siblings<&'static str, Cart>) -> String {
    cart.iter()
        .map(|(clock, items)| format!("{} {{{}}}", clock.dot(), items.join(", ")))
        .collect::<Vec<_>>()
        .join("  ")
}

/// What a client writes after reading `siblings`: every item of every sibling
/// (first seen first), plus `extra`.
pub(super) fn resolve<'a>(
    siblings: impl IntoIterator<Item = &'a Cart>,
    extra: &'a [&'static str],
) -> Cart {
    let mut cart: Cart = Vec::new();
    for &item in siblings.into_iter().flatten().chain(extra) {
        if !cart.contains(&item) {
            cart.push(item);
        }
    }
    cart
}
