//! VELO FAMILIES: Velo's own introspection of key families and their trained dictionaries (the figures are
//! `engine::dictionary::DictionaryMap::families`).

use bytes::Bytes;

use super::{Args, CmdError, Ctx};
use crate::engine::dictionary::FamilyInfo;
use crate::engine::family::display_family;
use crate::resp::Reply;

/// ```text
/// VELO FAMILIES
/// ```
pub fn families(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Array(ctx.engine.dictionaries().families().iter().map(family_reply).collect()))
}

fn bulk(text: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(text.into()))
}

fn int(value: u64) -> Reply {
    Reply::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

/// A ratio as text with three decimals (nil when there is nothing to divide by).
fn ratio(part: u64, whole: u64) -> Reply {
    if whole == 0 {
        Reply::Nil
    } else {
        bulk(format!("{:.3}", part as f64 / whole as f64))
    }
}

fn family_reply(f: &FamilyInfo) -> Reply {
    let eval = f.evaluation.as_ref();
    let fields: Vec<(&str, Reply)> = vec![
        ("family", bulk(display_family(&f.family))),
        ("writes", int(f.writes)),
        ("raw_bytes", int(f.raw_bytes)),
        ("stored_bytes", int(f.stored_bytes)),
        ("ratio", ratio(f.stored_bytes, f.raw_bytes)),
        ("dictionary_writes", int(f.dict_writes)),
        ("samples", int(f.samples)),
        ("dictionary", f.dictionary.map_or(Reply::Nil, |id| int(u64::from(id)))),
        ("dictionary_bytes", int(f.dictionary_bytes)),
        ("retired_dictionaries", Reply::Array(f.retired.iter().map(|id| int(u64::from(*id))).collect())),
        ("evaluated_at_ms", eval.map_or(Reply::Nil, |e| int(e.at_ms))),
        ("ratio_without_dictionary", eval.map_or(Reply::Nil, |e| ratio(e.without_dict_bytes, e.raw_bytes))),
        (
            "ratio_with_dictionary",
            eval.filter(|e| e.with_dict_bytes > 0).map_or(Reply::Nil, |e| ratio(e.with_dict_bytes, e.raw_bytes)),
        ),
        ("dictionary_installed", eval.map_or(Reply::Nil, |e| Reply::Int(i64::from(e.installed)))),
    ];
    Reply::Map(fields.into_iter().map(|(name, value)| (bulk(name), value)).collect())
}
