//! Reads a dumped Lua 5.1 chunk (`string.dump`, mlua's `Function::dump`) far enough to tell whether any of
//! its functions assigns a global (the `SETGLOBAL` instruction).
//!
//! A script that never assigns a global can read the globals table directly instead of through the
//! read-only proxy (see [`super::vm`]): each global read is then one table lookup, not three (the empty
//! proxy, its metatable's `__index`, the globals), and the proxy's only purpose, refusing assignments, has
//! nothing to refuse. Chunks loaded at run time (`loadstring`, `load`) still get the proxy, and no script
//! can reach the globals table itself (`_G` is the proxy; `getfenv`, `setfenv` and `debug` are gone).
//!
//! Layout read here (Lua 5.1's `ldump.c`): a 12-byte header (signature, version 0x51, format, endianness,
//! then the sizes of `int`, `size_t`, an instruction and a number), then the main function: source
//! string, two ints, four bytes, the code (an int count, then the instructions), the constants (an int
//! count, each a type byte and its value), the nested functions (an int count, each a function laid out
//! the same way), and the debug information (three int-counted lists; empty in a stripped dump).

/// `SETGLOBAL`'s opcode in Lua 5.1 (`lopcodes.h`: MOVE, LOADK, LOADBOOL, LOADNIL, GETUPVAL, GETGLOBAL,
/// GETTABLE, SETGLOBAL, ...); the opcode is an instruction's low 6 bits.
const OP_SETGLOBAL: u32 = 7;

/// True if a function of the dumped chunk assigns a global; `None` if the dump is not a Lua 5.1 chunk
/// this reader understands (the caller then assumes it does).
pub fn assigns_globals(dump: &[u8]) -> Option<bool> {
    let header = dump.get(..12)?;
    if &header[..5] != b"\x1bLua\x51" || header[5] != 0 || header[6] != 1 {
        return None;
    }
    let sizes = Sizes { int: header[7] as usize, size_t: header[8] as usize, number: header[10] as usize };
    if header[9] != 4 || !matches!(sizes.int, 4 | 8) || !matches!(sizes.size_t, 4 | 8) {
        return None;
    }
    let mut reader = Reader { bytes: dump, at: 12, sizes };
    let found = reader.function()?;
    (reader.at == dump.len()).then_some(found)
}

/// The sizes the chunk's header declares.
#[derive(Clone, Copy)]
struct Sizes {
    int: usize,
    size_t: usize,
    number: usize,
}

/// A cursor over the dump (little-endian, as the header requires).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    sizes: Sizes,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let taken = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    fn unsigned(&mut self, len: usize) -> Option<usize> {
        let bytes = self.take(len)?;
        let mut value = 0u64;
        for (shift, byte) in bytes.iter().enumerate() {
            value |= u64::from(*byte) << (8 * shift);
        }
        usize::try_from(value).ok()
    }

    fn int(&mut self) -> Option<usize> {
        self.unsigned(self.sizes.int)
    }

    fn string(&mut self) -> Option<()> {
        let len = self.unsigned(self.sizes.size_t)?;
        self.take(len).map(drop)
    }

    /// One function and its nested ones: true if any of them has a `SETGLOBAL`.
    fn function(&mut self) -> Option<bool> {
        self.string()?;
        self.take(2 * self.sizes.int + 4)?;
        let code = self.int()?;
        let mut found = false;
        for instruction in self.take(code.checked_mul(4)?)?.chunks_exact(4) {
            let instruction = u32::from_le_bytes([instruction[0], instruction[1], instruction[2], instruction[3]]);
            found |= instruction & 0x3f == OP_SETGLOBAL;
        }
        for _ in 0..self.int()? {
            match self.take(1)?[0] {
                0 => {}
                1 => self.take(1).map(drop)?,
                3 => self.take(self.sizes.number).map(drop)?,
                4 => self.string()?,
                _ => return None,
            }
        }
        for _ in 0..self.int()? {
            found |= self.function()?;
        }
        let lines = self.int()?;
        self.take(lines.checked_mul(self.sizes.int)?)?;
        for _ in 0..self.int()? {
            self.string()?;
            self.take(2 * self.sizes.int)?;
        }
        for _ in 0..self.int()? {
            self.string()?;
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    fn assigns(code: &str, strip: bool) -> Option<bool> {
        let lua = Lua::new();
        let function = lua.load(code).into_function().unwrap();
        assigns_globals(&function.dump(strip))
    }

    #[test]
    fn finds_global_assignments_in_nested_functions() {
        for strip in [true, false] {
            assert_eq!(assigns("local r = {}; for i = 1, 10 do r[i] = KEYS[i] end; return r", strip), Some(false));
            assert_eq!(assigns("return redis.call('incr', KEYS[1])", strip), Some(false));
            assert_eq!(assigns("x = 1", strip), Some(true));
            assert_eq!(assigns("function f() end", strip), Some(true));
            assert_eq!(assigns("local function f() return function() y = 2 end end return f", strip), Some(true));
            assert_eq!(
                assigns("local t = {1, 'a', true, nil, 2.5}; local function f() return t end", strip),
                Some(false)
            );
            assert_eq!(assigns("local s = [[\nmany\nlines]] local x = 1 return s .. x", strip), Some(false));
        }
    }

    #[test]
    fn every_damaged_dump_is_refused_without_panicking() {
        let lua = Lua::new();
        let function = lua.load("local a = {1, 'b'}; return function() return a end").into_function().unwrap();
        let dump = function.dump(false);
        assert_eq!(assigns_globals(&dump), Some(false));
        for len in 0..dump.len() {
            assert_eq!(assigns_globals(&dump[..len]), None, "truncated at {len}");
        }
        let mut longer = dump.clone();
        longer.push(0);
        assert_eq!(assigns_globals(&longer), None);
        assert_eq!(assigns_globals(b"return 1"), None);
    }
}
