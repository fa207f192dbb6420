//! Scripting's fields of INFO's memory section, as Redis 7.0 computes them: the interpreters' memory
//! (Lua's own count of its allocations), and the caches' overhead estimated from what they hold with
//! the sizes of Redis's structures (dict entries, buckets, the SHA and body strings), so that the
//! figures move as Redis's do when scripts and libraries are added or flushed.

use super::Scripting;

/// Bytes of a Redis `dictEntry` (key, value, next).
const DICT_ENTRY: usize = 24;
/// Bytes of Redis's `luaScript` (flags and the body's object pointer).
const LUA_SCRIPT: usize = 16;
/// Bytes of a function's `functionInfo` (name, callback, library, description, flags).
const FUNCTION_INFO: usize = 40;
/// Bytes of a library's `functionLibInfo` plus its functions dict.
const LIBRARY_INFO: usize = 96;
/// `used_memory_functions` with no library loaded (the engine registry and an empty library context:
/// what redis-server 7.0 reports on start).
const FUNCTIONS_BASE: usize = 200;

/// Bucket array bytes of a Redis dict holding `n` entries (power-of-two table, at least 4 slots).
fn dict_slots(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        n.next_power_of_two().max(4) * 8
    }
}

/// Allocation size of an sds string of `len` bytes (header, text, NUL; rounded to 8 as jemalloc's
/// small classes are).
fn sds(len: usize) -> usize {
    let header = if len < 256 {
        3
    } else if len < 65536 {
        5
    } else {
        9
    };
    (header + len + 1).div_ceil(8) * 8
}

impl Scripting {
    /// The scripting fields of INFO's memory section, in Redis's order; `human` formats bytes as
    /// `used_memory_human` does.
    pub fn memory_fields(&self, human: impl Fn(u64) -> String) -> Vec<(&'static str, String)> {
        let (scripts, vm_eval, bodies) = self.eval_stats();
        let scripts_eval = scripts * (sds(40) + DICT_ENTRY + LUA_SCRIPT) + bodies + scripts * 16 + dict_slots(scripts);
        let (functions, libraries, vm_functions, functions_overhead) = {
            let registry = self.functions.lock().unwrap_or_else(|p| p.into_inner());
            let mut functions = 0;
            let mut overhead = FUNCTIONS_BASE;
            for library in registry.libraries.values() {
                overhead += LIBRARY_INFO + sds(library.name.len()) + sds(library.code.len()) + DICT_ENTRY;
                for function in library.functions.values() {
                    functions += 1;
                    overhead += FUNCTION_INFO + 2 * DICT_ENTRY + sds(function.name.len());
                    overhead += function.description.as_ref().map_or(0, |d| sds(d.len()));
                }
                overhead += dict_slots(library.functions.len());
            }
            overhead += dict_slots(functions) + dict_slots(registry.libraries.len());
            (functions, registry.libraries.len(), registry.vm.lua.used_memory(), overhead)
        };
        let vm_total = vm_eval + vm_functions;
        let scripts_total = scripts_eval + functions_overhead;
        vec![
            ("used_memory_lua", vm_eval.to_string()),
            ("used_memory_vm_eval", vm_eval.to_string()),
            ("used_memory_lua_human", human(vm_eval as u64)),
            ("used_memory_scripts_eval", scripts_eval.to_string()),
            ("number_of_cached_scripts", scripts.to_string()),
            ("number_of_functions", functions.to_string()),
            ("number_of_libraries", libraries.to_string()),
            ("used_memory_vm_functions", vm_functions.to_string()),
            ("used_memory_vm_total", vm_total.to_string()),
            ("used_memory_vm_total_human", human(vm_total as u64)),
            ("used_memory_functions", functions_overhead.to_string()),
            ("used_memory_scripts", scripts_total.to_string()),
            ("used_memory_scripts_human", human(scripts_total as u64)),
        ]
    }
}
