//! The connection table: from an epoll token back to a connection.
//!
//! epoll hands back the 64-bit token we registered a socket with. We make
//! the token the connection's index in a vector of slots (a *slab*), so
//! finding the connection for an event is one index operation. Freed slots
//! are reused, which raises a danger: an old timer or a stale event for a
//! closed connection would find the *new* connection in the same slot. So
//! the token also carries the slot's *generation*, bumped on every reuse,
//! and a token with the wrong generation finds nothing.

use crate::poller::Token;

/// A vector of reusable slots, addressed by generation-checked tokens.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// Indices of empty slots, reused last-freed first.
    free: Vec<u32>,
    len: usize,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Slab<T> {
    /// An empty table.
    pub fn new() -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// The token the next [`Slab::insert`] will use: the value can be
    /// built knowing its own token.
    pub fn next_token(&self) -> Token {
        match self.free.last() {
            Some(&index) => token(index, self.slots[index as usize].generation),
            None => token(self.slots.len() as u32, 0),
        }
    }

    /// Stores `value` and returns its token.
    pub fn insert(&mut self, value: T) -> Token {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len())
                    .expect("fewer than 4 billion connections");
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.value = Some(value);
        self.len += 1;
        token(index, slot.generation)
    }

    /// The value stored under `token`, if it is still there.
    pub fn get(&self, token: Token) -> Option<&T> {
        let (index, generation) = split(token);
        let slot = self.slots.get(index as usize)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_ref()
    }

    /// The value stored under `token`, if it is still there.
    pub fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        let (index, generation) = split(token);
        let slot = self.slots.get_mut(index as usize)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// Takes the value out; its token never finds anything again.
    pub fn remove(&mut self, token: Token) -> Option<T> {
        let (index, generation) = split(token);
        let slot = self.slots.get_mut(index as usize)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.len -= 1;
        Some(value)
    }

    /// The tokens of every stored value.
    pub fn tokens(&self) -> Vec<Token> {
        let live = self.slots.iter().enumerate();
        live.filter(|(_, slot)| slot.value.is_some())
            .map(|(index, slot)| token(index as u32, slot.generation))
            .collect()
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab::new()
    }
}

fn token(index: u32, generation: u32) -> Token {
    (u64::from(generation) << 32) | u64::from(index)
}

fn split(token: Token) -> (u32, u32) {
    (token as u32, (token >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reused slot does not answer to the old token.
    #[test]
    fn stale_tokens_find_nothing() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let predicted = slab.next_token();
        let b = slab.insert("b");
        assert_eq!(b, predicted);
        assert_ne!(a, b);
        assert_eq!(slab.get_mut(a), None);
        assert_eq!(slab.get_mut(b), Some(&mut "b"));
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.tokens(), [b]);
    }
}
