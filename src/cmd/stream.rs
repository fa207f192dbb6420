//! Stream commands (the stream group of Redis 7.0): XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID,
//! XREAD, the consumer groups (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM) and XINFO. A stream
//! ([`crate::types::stream`]) is reached through a [`Handle`] of [`super::collection`]: one compact value
//! while small, split into nodes ([`crate::elements::streamed`]) when large, so that commands read and
//! write only the entries they concern. Counters and consumer groups are at hand in both forms. Replies,
//! the order of argument checks and error texts follow Redis's.
//!
//! BLOCK waits on the blocking registry; [`read_now`] is the "can this read be served now" step re-run on
//! wake-up.

use bytes::Bytes;

use super::collection::{inspect, Handle};
use super::{Args, CmdError, Ctx};
use crate::engine::Slot;
use crate::resp::Reply;
use crate::types::stream::{Consumer, Group, Pending, StreamId, StreamValue, Trim};

/// A stream under its slot lock for one command, compact or split ([`super::collection`]).
type Stream = Handle<StreamValue>;

/// Runs `work` on the stream at `key` (empty and not existing if missing) under the key's slot lock; when
/// `work` says it changed something, saves every change in one batch. WATCH: Redis 7.0 signals a stream
/// as modified when entries are added or removed (`entries`: XADD, XDEL, XTRIM) or MKSTREAM creates it,
/// never for consumer-group bookkeeping or XSETID.
fn update_stream<R>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    entries: bool,
    work: impl FnOnce(&mut Stream, &mut Slot) -> Result<(R, bool), CmdError>,
) -> Result<R, CmdError> {
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(key);
    // Commands that add or remove entries touch no consumer group: a split stream's groups stay unread.
    let mut stream = if entries {
        Stream::open_without_stream_groups(&mut slot, db, key)?
    } else {
        Stream::open(&mut slot, db, key)?
    };
    let existed = stream.existed();
    let (out, changed) = work(&mut stream, &mut slot)?;
    if changed {
        stream.save(&mut slot)?;
        slot.commit()?;
        if entries || !existed {
            ctx.touch(db, key);
        }
    }
    Ok(out)
}

/// Runs read-only `work` on the entries of the stream at `key` under its slot lock, without reading a
/// split stream's consumer groups (XLEN, XRANGE, XREVRANGE, XREAD).
fn inspect_entries<R>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    work: impl FnOnce(&mut Stream, &mut Slot) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(key);
    let mut stream = Stream::open_without_stream_groups(&mut slot, db, key)?;
    work(&mut stream, &mut slot)
}

/// Runs `change` on the counters and groups of the stream at `key` (with whether the key existed): for
/// the commands that touch no entry.
/// `event` (none if empty) is the keyspace notification of a change.
fn modify_groups(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    event: &'static str,
    change: impl FnOnce(&mut StreamValue, bool) -> Result<(Reply, bool), CmdError>,
) -> Result<Reply, CmdError> {
    let (mut changed_any, mut created) = (false, false);
    let reply = update_stream(ctx, key, false, |stream, _| {
        let existed = stream.existed();
        let (reply, changed) = change(stream.stream_meta_mut(), existed)?;
        changed_any = changed;
        created = changed && !existed;
        Ok((reply, changed))
    })?;
    // XGROUP CREATE ... MKSTREAM is the one that can create the key.
    ctx.notify_new(created, ctx.db(), key);
    if changed_any && !event.is_empty() {
        notify_stream(ctx, key, &[event]);
    }
    Ok(reply)
}

/// Publishes the stream keyspace events a command collected (after its change was saved), in order.
fn notify_stream(ctx: &Ctx<'_>, key: &[u8], events: &[&str]) {
    let db = ctx.db();
    for event in events {
        ctx.notify(crate::server::notify::STREAM, event, db, key);
    }
}

const INVALID_ID: &str = "Invalid stream ID specified as stream command argument";

/// Redis's `string2ull`: a strict integer first (negative rejected), else C's `strtoull` (leading
/// spaces, a sign, and a `-` that wraps around, as Redis accepts them).
fn parse_u64(text: &[u8]) -> Option<u64> {
    if let Some(value) = super::args::parse_i64(text) {
        return u64::try_from(value).ok();
    }
    let mut rest = text;
    while let Some((first, tail)) = rest.split_first() {
        if matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            rest = tail;
        } else {
            break;
        }
    }
    let negative = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value = 0u64;
    for digit in rest {
        value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    Some(if negative { value.wrapping_neg() } else { value })
}

/// A parsed ID argument: the ID, and whether its sequence was given (false for `<ms>-*`).
struct ParsedId {
    id: StreamId,
    seq_given: bool,
}

/// Redis's stream ID parser: `-`, `+` (refused when `strict`), `<ms>` (sequence `missing_seq`),
/// `<ms>-<seq>`, and `<ms>-*` when `allow_auto_seq`. Redis copies the argument into a C string first, so
/// text after a NUL byte is ignored, and more than 127 bytes is invalid.
fn parse_id_full(arg: &[u8], missing_seq: u64, strict: bool, allow_auto_seq: bool) -> Result<ParsedId, CmdError> {
    let invalid = || CmdError::err(INVALID_ID);
    if arg.len() > 127 {
        return Err(invalid());
    }
    let text = arg.split(|b| *b == 0).next().unwrap_or_default();
    match text {
        b"-" | b"+" if strict => Err(invalid()),
        b"-" => Ok(ParsedId { id: StreamId::MIN, seq_given: true }),
        b"+" => Ok(ParsedId { id: StreamId::MAX, seq_given: true }),
        _ => {
            let (ms_part, seq_part) = match text.iter().position(|b| *b == b'-') {
                Some(dash) => (&text[..dash], Some(&text[dash + 1..])),
                None => (text, None),
            };
            let ms = parse_u64(ms_part).ok_or_else(invalid)?;
            match seq_part {
                Some(b"*") if allow_auto_seq => Ok(ParsedId { id: StreamId::new(ms, 0), seq_given: false }),
                Some(seq) => {
                    Ok(ParsedId { id: StreamId::new(ms, parse_u64(seq).ok_or_else(invalid)?), seq_given: true })
                }
                None => Ok(ParsedId { id: StreamId::new(ms, missing_seq), seq_given: true }),
            }
        }
    }
}

/// An ID where `-` and `+` are refused (XDEL, XACK, XCLAIM, group IDs...).
fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_id_full(arg, 0, true, false).map(|p| p.id)
}

/// A range bound: `-`, `+`, an ID (a missing sequence is `missing_seq`), or `(`ID for an exclusive bound.
/// Returns the ID and whether it is exclusive.
fn parse_interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id_full(&arg[1..], missing_seq, true, false)?.id, true))
    } else {
        Ok((parse_id_full(arg, missing_seq, false, false)?.id, false))
    }
}

/// The start of an interval, exclusive bounds moved inward.
fn interval_start(arg: &[u8]) -> Result<StreamId, CmdError> {
    match parse_interval_id(arg, 0)? {
        (id, true) => id.next().ok_or_else(|| CmdError::err("invalid start ID for the interval")),
        (id, false) => Ok(id),
    }
}

/// The end of an interval, exclusive bounds moved inward.
fn interval_end(arg: &[u8]) -> Result<StreamId, CmdError> {
    match parse_interval_id(arg, u64::MAX)? {
        (id, true) => id.prev().ok_or_else(|| CmdError::err("invalid end ID for the interval")),
        (id, false) => Ok(id),
    }
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(Bytes::from(id.to_string()))
}

fn fields_reply(fields: &[(Bytes, Bytes)]) -> Reply {
    Reply::Array(fields.iter().flat_map(|(f, v)| [Reply::Bulk(f.clone()), Reply::Bulk(v.clone())]).collect())
}

fn entry_reply(id: StreamId, fields: &[(Bytes, Bytes)]) -> Reply {
    Reply::Array(vec![id_reply(id), fields_reply(fields)])
}

/// Entries in `[start, end]`, ascending (or descending when `rev`), at most `count` (0 = all).
fn range_reply(
    stream: &mut Stream,
    slot: &mut Slot,
    start: StreamId,
    end: StreamId,
    count: usize,
    rev: bool,
) -> Result<Vec<Reply>, CmdError> {
    let entries = stream.entries_between(slot, start, end, count, rev)?;
    Ok(entries.iter().map(|(id, fields)| entry_reply(*id, fields)).collect())
}

fn no_group_error(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Raw(
        format!(
            "NOGROUP No such key '{}' or consumer group '{}'",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(group)
        )
        .into(),
    )
}

fn no_group_for_key_error(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Raw(
        format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(group),
            String::from_utf8_lossy(key)
        )
        .into(),
    )
}

/// Redis's subcommand syntax error, naming the subcommand as sent.
fn subcommand_syntax_error(args: &Args, container: &str) -> CmdError {
    let sub = args.argv().get(1).map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default();
    CmdError::err(format!("unknown subcommand or wrong number of arguments for '{sub}'. Try {container} HELP."))
}

/// Looks a consumer up, creating it when missing, and marks it seen now; true if it was created.
fn seen_consumer(group: &mut Group, name: &Bytes, now: u64) -> bool {
    match group.consumers.get_mut(name) {
        Some(consumer) => {
            consumer.seen_time = now;
            false
        }
        None => {
            group.consumers.insert(name.clone(), Consumer { seen_time: now, active_time: None });
            true
        }
    }
}

/// XADD/XTRIM trimming options.
#[derive(Debug, Default)]
struct TrimArgs {
    strategy: Option<Trim>,
    approx: bool,
    limit: u64,
}

/// Parses XADD's (`xadd`) or XTRIM's options after the key, with Redis's errors in Redis's order; for
/// XADD, also the ID (None for `*`). Returns the options, the ID and the index of the first argument after
/// them.
fn parse_add_or_trim(
    argv: &[Bytes],
    xadd: bool,
    nodes: crate::types::stream::NodeLimits,
) -> Result<(TrimArgs, Option<ParsedId>, usize), CmdError> {
    let mut trim = TrimArgs::default();
    let mut limit_given = false;
    let mut id = None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = &argv[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (opt.eq_ignore_ascii_case(b"MAXLEN") || opt.eq_ignore_ascii_case(b"MINID")) && more > 0 {
            let maxlen = opt.eq_ignore_ascii_case(b"MAXLEN");
            // Redis refuses a second strategy, even the same one again, with this text.
            if trim.strategy.is_some() {
                return Err(CmdError::err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            trim.approx = false;
            let next = &argv[i + 1];
            if more >= 2 && (next.as_ref() == b"~" || next.as_ref() == b"=") {
                trim.approx = next.as_ref() == b"~";
                i += 1;
            }
            let value = &argv[i + 1];
            trim.strategy = Some(if maxlen {
                let n = super::args::parse_i64(value).ok_or(CmdError::NotInteger)?;
                if n < 0 {
                    return Err(CmdError::err("The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_strict_id(value)?)
            });
            i += 1;
        } else if opt.eq_ignore_ascii_case(b"LIMIT") && more > 0 {
            let n = super::args::parse_i64(&argv[i + 1]).ok_or(CmdError::NotInteger)?;
            if n < 0 {
                return Err(CmdError::err("The LIMIT argument must be >= 0."));
            }
            trim.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"NOMKSTREAM") {
            // handled by the caller (it looks for the flag among the options)
        } else if xadd {
            id = Some(parse_id_full(opt, 0, true, true)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if limit_given && trim.strategy.is_none() {
        return Err(CmdError::err("syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && trim.strategy.is_none() {
        return Err(CmdError::err("syntax error, XTRIM must be called with a trimming strategy"));
    }
    if limit_given && !trim.approx {
        return Err(CmdError::err("syntax error, LIMIT cannot be used without the special ~ option"));
    }
    if !limit_given {
        // Redis caps the work of an approximate trim at 100 nodes' worth of entries.
        trim.limit = if trim.approx { nodes.approx_trim_limit() } else { 0 };
    }
    Ok((trim, id, i))
}

fn apply_trim(stream: &mut Stream, slot: &mut Slot, trim: &TrimArgs) -> Result<u64, CmdError> {
    match trim.strategy {
        Some(strategy) => stream.trim(slot, strategy, trim.approx, trim.limit),
        None => Ok(0),
    }
}

/// ```text
/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]
/// ```
pub fn xadd(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argv = args.argv().to_vec();
    let nodes = ctx.server.live.encoding_limits().stream_nodes;
    let (trim, id, id_pos) = parse_add_or_trim(&argv, true, nodes)?;
    let no_mkstream = argv[2..id_pos.min(argv.len())].iter().any(|a| a.eq_ignore_ascii_case(b"NOMKSTREAM"));
    let field_pos = id_pos + 1;
    let pairs = argv.len().saturating_sub(field_pos);
    if field_pos > argv.len() || pairs < 2 || pairs % 2 == 1 {
        return Err(CmdError::WrongArity("xadd"));
    }
    // Redis refuses 0-0 before looking at the key, so that no key gets created.
    if id.as_ref().is_some_and(|p| p.seq_given && p.id.is_zero()) {
        return Err(CmdError::err("The ID specified in XADD must be greater than 0-0"));
    }
    let fields: Vec<(Bytes, Bytes)> = argv[field_pos..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
    let now = ctx.now_ms();
    let key = argv[1].clone();
    let mut events = Vec::new();
    let mut created = false;
    let reply = update_stream(ctx, &key, true, |stream, slot| {
        created = !stream.existed();
        if !stream.existed() && no_mkstream {
            return Ok((Reply::Nil, false));
        }
        let last = stream.stream_meta().last_id;
        if last == StreamId::MAX {
            return Err(CmdError::err("The stream has exhausted the last possible ID, unable to add more items"));
        }
        let too_small =
            || CmdError::err("The ID specified in XADD is equal or smaller than the target stream top item");
        let new_id = match id {
            None if now > last.ms => StreamId::new(now, 0),
            None => last.next().ok_or_else(too_small)?,
            Some(ParsedId { id, seq_given: false }) => {
                if id.ms < last.ms {
                    return Err(too_small());
                }
                // Redis's text when `<ms>-*` has no sequence number left.
                if id.ms == last.ms && last.seq == u64::MAX {
                    return Err(CmdError::err("Elements are too large to be stored"));
                }
                if id.ms == last.ms {
                    StreamId::new(id.ms, last.seq + 1)
                } else {
                    id
                }
            }
            Some(ParsedId { id, .. }) if id <= last => return Err(too_small()),
            Some(ParsedId { id, .. }) => id,
        };
        stream.append(slot, new_id, fields, nodes)?;
        events.push("xadd");
        if apply_trim(stream, slot, &trim)? > 0 {
            events.push("xtrim");
        }
        Ok((id_reply(new_id), true))
    })?;
    ctx.notify_new(created && !events.is_empty(), ctx.db(), &key);
    notify_stream(ctx, &key, &events);
    Ok(reply)
}

/// ```text
/// XLEN key
/// ```
pub fn xlen(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    inspect_entries(ctx, &key, |stream, _| Ok(Reply::Int(stream.len() as i64)))
}

fn range_command(ctx: &mut Ctx<'_>, args: &mut Args, rev: bool) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let first = args.next_bytes()?;
    let second = args.next_bytes()?;
    let (start_arg, end_arg) = if rev { (second, first) } else { (first, second) };
    let start = interval_start(&start_arg)?;
    let end = interval_end(&end_arg)?;
    let mut count: Option<i64> = None;
    while !args.is_empty() {
        if args.remaining() >= 2 && args.eat("COUNT") {
            count = Some(args.next_i64()?.max(0));
        } else {
            return Err(CmdError::Syntax);
        }
    }
    inspect_entries(ctx, &key, |stream, slot| {
        if !stream.existed() {
            return Ok(Reply::Array(Vec::new()));
        }
        Ok(match count {
            Some(0) => Reply::NilArray,
            count => Reply::Array(range_reply(stream, slot, start, end, count.unwrap_or(0) as usize, rev)?),
        })
    })
}

/// ```text
/// XRANGE key start end [COUNT count]
/// ```
pub fn xrange(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    range_command(ctx, args, false)
}

/// ```text
/// XREVRANGE key end start [COUNT count]
/// ```
pub fn xrevrange(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    range_command(ctx, args, true)
}

/// ```text
/// XDEL key id [id ...]
/// ```
pub fn xdel(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let id_args = args.rest();
    let mut events = Vec::new();
    let reply = update_stream(ctx, &key, true, |stream, slot| {
        if !stream.existed() {
            return Ok((Reply::Int(0), false));
        }
        // Every ID is checked before any is deleted: the command is all or nothing.
        let ids = id_args.iter().map(|a| parse_strict_id(a)).collect::<Result<Vec<_>, _>>()?;
        let mut deleted = 0;
        for id in ids {
            deleted += usize::from(stream.delete(slot, id)?);
        }
        if deleted > 0 {
            events.push("xdel");
        }
        Ok((Reply::Int(deleted as i64), deleted > 0))
    })?;
    notify_stream(ctx, &key, &events);
    Ok(reply)
}

/// ```text
/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
/// ```
pub fn xtrim(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argv = args.argv().to_vec();
    let (trim, _, _) = parse_add_or_trim(&argv, false, ctx.server.live.encoding_limits().stream_nodes)?;
    let mut events = Vec::new();
    let reply = update_stream(ctx, &argv[1], true, |stream, slot| {
        if !stream.existed() {
            return Ok((Reply::Int(0), false));
        }
        let removed = apply_trim(stream, slot, &trim)?;
        if removed > 0 {
            events.push("xtrim");
        }
        Ok((Reply::Int(removed as i64), removed > 0))
    })?;
    notify_stream(ctx, &argv[1], &events);
    Ok(reply)
}

/// ```text
/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
/// ```
pub fn xsetid(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let id = parse_strict_id(&args.next_bytes()?)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    while !args.is_empty() {
        if args.remaining() >= 2 && args.eat("ENTRIESADDED") {
            let n = args.next_i64()?;
            if n < 0 {
                return Err(CmdError::err("entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if args.remaining() >= 2 && args.eat("MAXDELETEDID") {
            max_deleted = parse_strict_id(&args.next_bytes()?)?;
            if id < max_deleted {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(CmdError::Syntax);
        }
    }
    update_stream(ctx, &key, false, |handle, slot| {
        if !handle.existed() {
            return Err(CmdError::NoSuchKey);
        }
        let len = handle.len();
        if let Some(top) = handle.top_id(slot)? {
            if id < top {
                return Err(CmdError::err("The ID specified in XSETID is smaller than the target stream top item"));
            }
            if entries_added.is_some_and(|n| len > n) {
                return Err(CmdError::err(
                    "The entries_added specified in XSETID is smaller than the target stream length",
                ));
            }
        }
        let stream = handle.stream_meta_mut();
        stream.last_id = id;
        if let Some(n) = entries_added {
            stream.entries_added = n;
        }
        if !max_deleted.is_zero() {
            stream.max_deleted_id = max_deleted;
        }
        Ok((Reply::Ok, true))
    })?;
    notify_stream(ctx, &key, &["xsetid"]);
    Ok(Reply::Ok)
}

/// A parsed XREAD or XREADGROUP.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// GROUP name and consumer (XREADGROUP).
    pub group: Option<(Bytes, Bytes)>,
    /// COUNT (0 = no limit).
    pub count: usize,
    /// BLOCK timeout in ms, if given (0 = forever).
    pub block_ms: Option<u64>,
    /// NOACK (XREADGROUP).
    pub noack: bool,
    /// Each stream with the ID to read after; `StreamId::MAX` stands for `>`.
    pub streams: Vec<(Bytes, StreamId)>,
}

/// Parses XREAD/XREADGROUP options and resolves the IDs (`$` becomes the stream's last ID now) with
/// Redis's checks in Redis's order.
fn parse_read(ctx: &mut Ctx<'_>, args: &mut Args, xreadgroup: bool) -> Result<ReadRequest, CmdError> {
    let argv = args.argv().to_vec();
    let mut request = ReadRequest { group: None, count: 0, block_ms: None, noack: false, streams: Vec::new() };
    let mut streams_at = None;
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        let opt = &argv[i];
        if opt.eq_ignore_ascii_case(b"BLOCK") && more > 0 {
            if ctx.client.handle.intro.in_script.load(std::sync::atomic::Ordering::Relaxed) {
                // Redis refuses BLOCK from a script outright rather than running it without blocking.
                let name = String::from_utf8_lossy(&argv[0]);
                return Err(CmdError::err(format!("{name} command is not allowed with BLOCK option from scripts")));
            }
            i += 1;
            let timeout = super::args::parse_i64(&argv[i])
                .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
            if timeout < 0 {
                return Err(CmdError::err("timeout is negative"));
            }
            request.block_ms = Some(timeout as u64);
        } else if opt.eq_ignore_ascii_case(b"COUNT") && more > 0 {
            i += 1;
            request.count = super::args::parse_i64(&argv[i]).ok_or(CmdError::NotInteger)?.max(0) as usize;
        } else if opt.eq_ignore_ascii_case(b"STREAMS") && more > 0 {
            if !(argv.len() - i - 1).is_multiple_of(2) {
                // Redis names XREAD here for both commands.
                return Err(CmdError::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            streams_at = Some(i + 1);
            break;
        } else if opt.eq_ignore_ascii_case(b"GROUP") && more >= 2 {
            if !xreadgroup {
                return Err(CmdError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            request.group = Some((argv[i + 1].clone(), argv[i + 2].clone()));
            i += 2;
        } else if opt.eq_ignore_ascii_case(b"NOACK") {
            if !xreadgroup {
                return Err(CmdError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            request.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let Some(streams_at) = streams_at else { return Err(CmdError::Syntax) };
    if xreadgroup && request.group.is_none() {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    }
    let n = (argv.len() - streams_at) / 2;
    for k in 0..n {
        let key = argv[streams_at + k].clone();
        let id_arg = &argv[streams_at + n + k];
        // Only the counters and groups are needed here: no entry is read.
        let (existed, last_id, has_group) = inspect(ctx, &key, |stream: &mut Stream, _| {
            let meta = stream.stream_meta();
            let has_group = request.group.as_ref().is_some_and(|(group, _)| meta.groups.contains_key(group));
            Ok((stream.existed(), meta.last_id, has_group))
        })?;
        if let Some((group, _)) = &request.group {
            if !(existed && has_group) {
                return Err(CmdError::Raw(
                    format!(
                        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                        String::from_utf8_lossy(&key),
                        String::from_utf8_lossy(group)
                    )
                    .into(),
                ));
            }
        }
        let id = if id_arg.as_ref() == b"$" {
            if xreadgroup {
                return Err(CmdError::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this \
                     consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just \
                     return an empty result set.",
                ));
            }
            if existed {
                last_id
            } else {
                StreamId::MIN
            }
        } else if id_arg.as_ref() == b">" {
            if !xreadgroup {
                return Err(CmdError::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            StreamId::MAX
        } else {
            parse_strict_id(id_arg)?
        };
        request.streams.push((key, id));
    }
    Ok(request)
}

/// Serves `request` now if any of its streams has something for it (XREADGROUP history reads always
/// are served): the reply, or None when the read would have to wait. A blocked read re-runs this on
/// wake-up.
pub fn read_now(ctx: &mut Ctx<'_>, request: &ReadRequest) -> Result<Option<Reply>, CmdError> {
    let now = ctx.now_ms();
    let mut served: Vec<(Reply, Reply)> = Vec::new();
    for (key, after) in &request.streams {
        let reply = match &request.group {
            None => inspect_entries(ctx, key, |stream, slot| {
                match stream.top_id(slot)? {
                    Some(top) if top > *after => {}
                    _ => return Ok(None),
                }
                let start = after.next().unwrap_or(StreamId::MAX);
                Ok(Some(Reply::Array(range_reply(stream, slot, start, StreamId::MAX, request.count, false)?)))
            })?,
            Some((group_name, consumer_name)) => {
                let mut created = false;
                let result = update_stream(ctx, key, false, |stream, slot| {
                    let has_consumer = |stream: &Stream| {
                        stream
                            .stream_meta()
                            .groups
                            .get(group_name)
                            .is_some_and(|g| g.consumers.contains_key(consumer_name))
                    };
                    let known = has_consumer(stream);
                    let result = group_read(stream, slot, group_name, consumer_name, *after, request, now)?;
                    created = !known && has_consumer(stream);
                    let changed = result.is_some();
                    Ok((result, changed))
                })?;
                if created {
                    notify_stream(ctx, key, &["xgroup-createconsumer"]);
                }
                result
            }
        };
        if let Some(reply) = reply {
            served.push((Reply::Bulk(key.clone()), reply));
        }
    }
    if served.is_empty() {
        return Ok(None);
    }
    // One map from key to entries in RESP3; RESP2 has no maps here but pairs (not a flat array).
    Ok(Some(match ctx.client.proto {
        crate::resp::Protocol::Resp3 => Reply::Map(served),
        crate::resp::Protocol::Resp2 => {
            Reply::Array(served.into_iter().map(|(k, v)| Reply::Array(vec![k, v])).collect())
        }
    }))
}

/// One stream of an XREADGROUP: history (IDs after `after` in the consumer's pending list) or, for `>`
/// (`after` = MAX), new entries past the group's last-delivered ID; None when there is nothing to serve.
/// Redis's answer to an XREADGROUP whose group was destroyed while it was blocked.
fn group_destroyed() -> CmdError {
    CmdError::Raw("NOGROUP the consumer group this client was blocked on no longer exists".into())
}

fn group_read(
    stream: &mut Stream,
    slot: &mut Slot,
    group_name: &Bytes,
    consumer: &Bytes,
    after: StreamId,
    request: &ReadRequest,
    now: u64,
) -> Result<Option<Reply>, CmdError> {
    let limit = if request.count == 0 { usize::MAX } else { request.count };
    // The group existed when the command was parsed: gone now, it was destroyed while the client waited.
    let Some(group) = stream.stream_meta().groups.get(group_name) else { return Err(group_destroyed()) };
    let group_last = group.last_id;
    if after != StreamId::MAX {
        let Some(start) = after.next() else { return Ok(Some(Reply::Array(Vec::new()))) };
        let Some(group) = stream.stream_meta_mut().groups.get_mut(group_name) else { return Err(group_destroyed()) };
        seen_consumer(group, consumer, now);
        let ids: Vec<StreamId> =
            group.pending_of(consumer).filter(|(id, _)| **id >= start).map(|(id, _)| *id).take(limit).collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match stream.entry(slot, id)? {
                Some(fields) => {
                    out.push(entry_reply(id, &fields));
                    let group = stream.stream_meta_mut().groups.get_mut(group_name);
                    if let Some(pending) = group.and_then(|g| g.pel.get_mut(&id)) {
                        pending.delivery_time = now;
                        pending.delivery_count += 1;
                    }
                }
                // A pending entry deleted from the stream comes back with null fields.
                None => out.push(Reply::Array(vec![id_reply(id), Reply::NilArray])),
            }
        }
        return Ok(Some(Reply::Array(out)));
    }
    match stream.top_id(slot)? {
        Some(top) if top > group_last => {}
        _ => return Ok(None),
    }
    let Some(start) = group_last.next() else { return Ok(None) };
    let delivered = stream.entries_between(slot, start, StreamId::MAX, limit, false)?;
    // Delivery adds or removes no entry: the counters' view of the stream holds for the whole read.
    let extent = stream.extent(slot)?;
    let meta = stream.stream_meta_mut();
    if let Some(group) = meta.groups.get_mut(group_name) {
        seen_consumer(group, consumer, now);
    }
    let mut out = Vec::with_capacity(delivered.len());
    for (id, fields) in delivered {
        meta.advance_group(extent, group_name, id);
        out.push(entry_reply(id, &fields));
        let Some(group) = meta.groups.get_mut(group_name) else { continue };
        if !request.noack {
            // An entry already pending (XGROUP SETID moved the group back) changes owner.
            group.pel.insert(id, Pending { consumer: consumer.clone(), delivery_time: now, delivery_count: 1 });
            if let Some(c) = group.consumers.get_mut(consumer) {
                c.active_time = Some(now);
            }
        }
    }
    Ok(Some(Reply::Array(out)))
}

fn read_command(ctx: &mut Ctx<'_>, args: &mut Args, xreadgroup: bool) -> Result<Reply, CmdError> {
    let request = parse_read(ctx, args, xreadgroup)?;
    if let Some(reply) = read_now(ctx, &request)? {
        return Ok(reply);
    }
    let Some(block_ms) = request.block_ms else { return Ok(Reply::NilArray) };
    // Nothing yet: wait for a write to one of the streams (forever for BLOCK 0), then read again with the
    // same resolved IDs (`$` was fixed when the command arrived, as in Redis).
    let timeout = (block_ms > 0).then(|| std::time::Duration::from_millis(block_ms));
    let keys = request.streams.iter().map(|(key, _)| key.clone()).collect();
    let group = request.group.is_some();
    let serve = move |ctx: &mut Ctx<'_>, ready: &Bytes| {
        // A stream deleted or replaced by another type (DEL, SET, RENAME, FLUSHDB, SWAPDB, ...) ends an
        // XREADGROUP's wait with UNBLOCKED (Redis 7.0); XREAD keeps waiting.
        if !crate::server::blocking::holds(ctx, ready, crate::engine::ValueKind::Stream)? {
            return Ok(request.group.is_some().then(|| Reply::error("UNBLOCKED the stream key no longer exists")));
        }
        read_now(ctx, &request)
    };
    let reply = ctx.block(keys, timeout, serve, Reply::NilArray);
    if let Some(block) = ctx.client.block.as_mut() {
        block.on_deletion = group;
    }
    Ok(reply)
}

/// ```text
/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
/// ```
pub fn xread(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    read_command(ctx, args, false)
}

/// ```text
/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]
/// ```
pub fn xreadgroup(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    read_command(ctx, args, true)
}

/// Parses `[MKSTREAM] [ENTRIESREAD n]` after XGROUP CREATE/SETID's ID: (mkstream, entries read, -1 = unset).
fn group_options(args: &mut Args, create: bool) -> Result<(bool, i64), CmdError> {
    let mut mkstream = false;
    let mut entries_read = -1;
    while !args.is_empty() {
        if create && args.eat("MKSTREAM") {
            mkstream = true;
        } else if args.remaining() >= 2 && args.eat("ENTRIESREAD") {
            entries_read = args.next_i64()?;
            if entries_read < -1 {
                return Err(CmdError::err("value for ENTRIESREAD must be positive or -1"));
            }
        } else {
            return Err(subcommand_syntax_error(args, "XGROUP"));
        }
    }
    Ok((mkstream, entries_read))
}

const XGROUP_NEEDS_KEY: &str =
    "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use \
                                the MKSTREAM option to create an empty stream automatically.";

/// ```text
/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]
/// ```
pub fn xgroup_create(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argc = args.argv().len();
    let key = args.next_bytes()?;
    let group = args.next_bytes()?;
    let id_arg = args.next_bytes()?;
    let (mkstream, entries_read) = group_options(args, true)?;
    modify_groups(ctx, &key, "xgroup-create", |stream: &mut StreamValue, existed| {
        if !existed && !mkstream {
            return Err(CmdError::err(XGROUP_NEEDS_KEY));
        }
        // Redis checks the options and the key before the argument count.
        if argc > 8 {
            return Err(subcommand_syntax_error(args, "XGROUP"));
        }
        let id = if id_arg.as_ref() == b"$" { stream.last_id } else { parse_strict_id(&id_arg)? };
        if stream.groups.contains_key(&group) {
            return Err(CmdError::Raw("BUSYGROUP Consumer Group name already exists".into()));
        }
        let entries_read = u64::try_from(entries_read).ok();
        stream.groups.insert(group.clone(), Group { last_id: id, entries_read, ..Group::default() });
        Ok((Reply::Ok, true))
    })
}

/// Runs `change` on an existing group of the stream at `key`, with XGROUP's errors for a missing key or
/// group.
fn with_group(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    group: &Bytes,
    event: &'static str,
    change: impl FnOnce(&mut StreamValue) -> Result<(Reply, bool), CmdError>,
) -> Result<Reply, CmdError> {
    modify_groups(ctx, key, event, |stream: &mut StreamValue, existed| {
        if !existed {
            return Err(CmdError::err(XGROUP_NEEDS_KEY));
        }
        if !stream.groups.contains_key(group) {
            return Err(no_group_for_key_error(key, group));
        }
        change(stream)
    })
}

/// ```text
/// XGROUP SETID key group id|$ [ENTRIESREAD entries-read]
/// ```
pub fn xgroup_setid(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argc = args.argv().len();
    let key = args.next_bytes()?;
    let group = args.next_bytes()?;
    let id_arg = args.next_bytes()?;
    let (_, entries_read) = group_options(args, false)?;
    with_group(ctx, &key, &group, "xgroup-setid", |stream| {
        // Redis checks the options, the key and the group before the argument count.
        if argc != 5 && argc != 7 {
            return Err(subcommand_syntax_error(args, "XGROUP"));
        }
        let id = if id_arg.as_ref() == b"$" { stream.last_id } else { parse_id_full(&id_arg, 0, false, false)?.id };
        let group = stream.groups.get_mut(&group).expect("checked by with_group");
        group.last_id = id;
        group.entries_read = u64::try_from(entries_read).ok();
        Ok((Reply::Ok, true))
    })
}

/// ```text
/// XGROUP DESTROY key group
/// ```
pub fn xgroup_destroy(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let group = args.next_bytes()?;
    let reply = modify_groups(ctx, &key, "xgroup-destroy", |stream: &mut StreamValue, existed| {
        if !existed {
            return Err(CmdError::err(XGROUP_NEEDS_KEY));
        }
        let removed = stream.groups.remove(&group).is_some();
        Ok((Reply::Int(removed.into()), removed))
    })?;
    // As Redis, the key is signalled: an XREADGROUP blocked on the group is answered NOGROUP.
    if matches!(reply, Reply::Int(1)) {
        let logical = ctx.server.dbmap.logical(ctx.db());
        if ctx.server.blocking.is_waited(logical, &key) {
            ctx.server.blocking.signal(logical, &key);
        }
    }
    Ok(reply)
}

/// ```text
/// XGROUP CREATECONSUMER key group consumer
/// ```
pub fn xgroup_createconsumer(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let group = args.next_bytes()?;
    let consumer = args.next_bytes()?;
    let now = ctx.now_ms();
    with_group(ctx, &key, &group, "xgroup-createconsumer", |stream| {
        let group = stream.groups.get_mut(&group).expect("checked by with_group");
        if group.consumers.contains_key(&consumer) {
            return Ok((Reply::Int(0), false));
        }
        group.consumers.insert(consumer, Consumer { seen_time: now, active_time: None });
        Ok((Reply::Int(1), true))
    })
}

/// ```text
/// XGROUP DELCONSUMER key group consumer
/// ```
pub fn xgroup_delconsumer(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let group = args.next_bytes()?;
    let consumer = args.next_bytes()?;
    with_group(ctx, &key, &group, "xgroup-delconsumer", |stream| {
        let group = stream.groups.get_mut(&group).expect("checked by with_group");
        if group.consumers.remove(&consumer).is_none() {
            return Ok((Reply::Int(0), false));
        }
        let before = group.pel.len();
        group.pel.retain(|_, p| p.consumer != consumer);
        Ok((Reply::Int((before - group.pel.len()) as i64), true))
    })
}

/// ```text
/// XGROUP HELP
/// ```
pub fn xgroup_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let lines = [
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Prints this help.",
    ];
    Ok(Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect()))
}

/// ```text
/// XACK key group id [id ...]
/// ```
pub fn xack(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let group = args.next_bytes()?;
    let id_args = args.rest();
    modify_groups(ctx, &key, "", |stream: &mut StreamValue, _| {
        // No key or group: nothing to acknowledge, whatever the IDs.
        let Some(group) = stream.groups.get_mut(&group) else { return Ok((Reply::Int(0), false)) };
        // All IDs are checked before any is acknowledged.
        let ids = id_args.iter().map(|a| parse_strict_id(a)).collect::<Result<Vec<_>, _>>()?;
        let acked = ids.into_iter().filter(|id| group.pel.remove(id).is_some()).count();
        Ok((Reply::Int(acked as i64), acked > 0))
    })
}

/// ```text
/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
/// ```
pub fn xpending(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argv = args.argv().to_vec();
    let argc = argv.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CmdError::Syntax);
    }
    let (key, group_name) = (&argv[1], &argv[2]);
    let mut extended = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0i64;
        if argv[3].eq_ignore_ascii_case(b"IDLE") {
            min_idle = super::args::parse_i64(&argv[4]).ok_or(CmdError::NotInteger)?;
            if argc < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = super::args::parse_i64(&argv[at + 2]).ok_or(CmdError::NotInteger)?.max(0) as usize;
        let start = interval_start(&argv[at])?;
        let end = interval_end(&argv[at + 1])?;
        let consumer = argv.get(at + 3).cloned();
        extended = Some((min_idle, start, end, count, consumer));
    }
    // The pending list is all XPENDING reads (a missing key has no groups).
    let group = inspect(ctx, key, |stream: &mut Stream, _| Ok(stream.stream_meta().groups.get(group_name).cloned()))?;
    let Some(group) = group.as_ref() else {
        return Err(no_group_error(key, group_name));
    };
    let Some((min_idle, start, end, count, consumer)) = extended else {
        let (Some(first), Some(last)) = (group.pel.keys().next(), group.pel.keys().next_back()) else {
            return Ok(Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]));
        };
        let owners = group
            .consumers
            .keys()
            .filter_map(|name| {
                let n = group.pending_of(name).count();
                (n > 0).then(|| Reply::Array(vec![Reply::Bulk(name.clone()), Reply::bulk_int(n as i64)]))
            })
            .collect();
        return Ok(Reply::Array(vec![
            Reply::Int(group.pel.len() as i64),
            id_reply(*first),
            id_reply(*last),
            Reply::Array(owners),
        ]));
    };
    if consumer.as_ref().is_some_and(|c| !group.consumers.contains_key(c)) {
        return Ok(Reply::Array(Vec::new()));
    }
    let now = ctx.now_ms();
    let mut out = Vec::new();
    if start <= end {
        for (id, pending) in group.pel.range(start..=end) {
            if out.len() >= count {
                break;
            }
            if consumer.as_ref().is_some_and(|c| *c != pending.consumer) {
                continue;
            }
            let idle = now as i64 - pending.delivery_time as i64;
            if min_idle != 0 && idle < min_idle {
                continue;
            }
            out.push(Reply::Array(vec![
                id_reply(*id),
                Reply::Bulk(pending.consumer.clone()),
                Reply::Int(idle.max(0)),
                Reply::Int(pending.delivery_count as i64),
            ]));
        }
    }
    Ok(Reply::Array(out))
}

/// Gives pending entry `id` to `consumer` (creating the consumer, marked seen, on first use): XCLAIM's and
/// XAUTOCLAIM's common step.
fn claim_one<'g>(
    group: &'g mut Group,
    id: StreamId,
    consumer: &Bytes,
    consumer_seen: &mut bool,
    created: &mut bool,
    now: u64,
) -> Option<&'g mut Pending> {
    if !*consumer_seen {
        *created = seen_consumer(group, consumer, now);
        *consumer_seen = true;
    }
    if let Some(c) = group.consumers.get_mut(consumer) {
        c.active_time = Some(now);
    }
    let pending = group.pel.get_mut(&id)?;
    pending.consumer = consumer.clone();
    Some(pending)
}

/// ```text
/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds]
///     [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
/// ```
pub fn xclaim(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argv = args.argv().to_vec();
    let (key, group_name, consumer) = (&argv[1], &argv[2], &argv[3]);
    let now = ctx.now_ms() as i64;
    let mut created = false;
    let reply = update_stream(ctx, key, false, |handle, slot| {
        if !handle.stream_meta().groups.contains_key(group_name) {
            return Err(no_group_error(key, group_name));
        }
        let min_idle = super::args::parse_i64(&argv[4])
            .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XCLAIM"))?
            .max(0);
        let mut j = 5;
        let mut ids = Vec::new();
        while let Some(Ok(id)) = argv.get(j).map(|a| parse_strict_id(a)) {
            ids.push(id);
            j += 1;
        }
        let (mut force, mut justid) = (false, false);
        let mut delivery_time: Option<i64> = None;
        let mut retry_count: Option<i64> = None;
        let mut last_id = StreamId::MIN;
        while j < argv.len() {
            let more = argv.len() - 1 - j;
            let opt = &argv[j];
            let number = |arg: &Bytes, what: &str| {
                super::args::parse_i64(arg)
                    .ok_or_else(|| CmdError::err(format!("Invalid {what} option argument for XCLAIM")))
            };
            if opt.eq_ignore_ascii_case(b"FORCE") {
                force = true;
            } else if opt.eq_ignore_ascii_case(b"JUSTID") {
                justid = true;
            } else if opt.eq_ignore_ascii_case(b"IDLE") && more > 0 {
                j += 1;
                delivery_time = Some(now.wrapping_sub(number(&argv[j], "IDLE")?));
            } else if opt.eq_ignore_ascii_case(b"TIME") && more > 0 {
                j += 1;
                delivery_time = Some(number(&argv[j], "TIME")?);
            } else if opt.eq_ignore_ascii_case(b"RETRYCOUNT") && more > 0 {
                j += 1;
                retry_count = Some(number(&argv[j], "RETRYCOUNT")?);
            } else if opt.eq_ignore_ascii_case(b"LASTID") && more > 0 {
                j += 1;
                last_id = parse_strict_id(&argv[j])?;
            } else {
                return Err(CmdError::err(format!("Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(opt))));
            }
            j += 1;
        }
        let mut changed = false;
        let group = handle.stream_meta_mut().groups.get_mut(group_name).expect("checked above");
        if last_id > group.last_id {
            group.last_id = last_id;
            changed = true;
        }
        // A bogus delivery time (negative, or in the future) means now, as in Redis.
        let delivery_time = match delivery_time {
            Some(t) if (0..=now).contains(&t) => t as u64,
            _ => now as u64,
        };
        let mut consumer_seen = false;
        let mut out = Vec::new();
        for id in ids {
            let fields = handle.entry(slot, id)?;
            let group = handle.stream_meta_mut().groups.get_mut(group_name).expect("checked above");
            let Some(fields) = fields else {
                // Pending entries whose stream entry was deleted are dropped, not claimed.
                changed |= group.pel.remove(&id).is_some();
                continue;
            };
            let forced = force && !group.pel.contains_key(&id);
            if forced {
                // FORCE creates the pending entry (delivered once, now); it has no owner whose idle time
                // would be checked.
                group
                    .pel
                    .insert(id, Pending { consumer: consumer.clone(), delivery_time: now as u64, delivery_count: 1 });
            }
            let Some(pending) = group.pel.get(&id) else { continue };
            if !forced && min_idle != 0 && now - (pending.delivery_time as i64) < min_idle {
                continue;
            }
            let Some(pending) = claim_one(group, id, consumer, &mut consumer_seen, &mut created, now as u64) else {
                continue;
            };
            pending.delivery_time = delivery_time;
            match retry_count {
                Some(n) if n >= 0 => pending.delivery_count = n as u64,
                _ if !justid => pending.delivery_count += 1,
                _ => {}
            }
            changed = true;
            out.push(if justid { id_reply(id) } else { entry_reply(id, &fields) });
        }
        Ok((Reply::Array(out), changed))
    })?;
    if created {
        notify_stream(ctx, key, &["xgroup-createconsumer"]);
    }
    Ok(reply)
}

/// ```text
/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
/// ```
pub fn xautoclaim(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argv = args.argv().to_vec();
    let (key, group_name, consumer) = (&argv[1], &argv[2], &argv[3]);
    let min_idle = super::args::parse_i64(&argv[4])
        .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let start = interval_start(&argv[5])?;
    let mut count: u64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if argv[j].eq_ignore_ascii_case(b"COUNT") && more > 0 {
            // Redis bounds COUNT so that count * 16 bytes of IDs cannot overflow a long.
            let max = (i64::MAX / 16) as u64;
            count = super::args::parse_i64(&argv[j + 1])
                .and_then(|n| u64::try_from(n).ok())
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| CmdError::err("COUNT must be > 0"))?;
            j += 1;
        } else if argv[j].eq_ignore_ascii_case(b"JUSTID") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let now = ctx.now_ms();
    let mut created = false;
    let reply = update_stream(ctx, key, false, |handle, slot| {
        let Some(group) = handle.stream_meta().groups.get(group_name) else {
            return Err(no_group_error(key, group_name));
        };
        let candidates: Vec<StreamId> = group.pel.range(start..).map(|(id, _)| *id).collect();
        let mut attempts = count.saturating_mul(10);
        let mut remaining = count;
        let mut examined = 0;
        let mut consumer_seen = false;
        let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
        for id in &candidates {
            if attempts == 0 || remaining == 0 {
                break;
            }
            attempts -= 1;
            examined += 1;
            let fields = handle.entry(slot, *id)?;
            let group = handle.stream_meta_mut().groups.get_mut(group_name).expect("checked above");
            let Some(fields) = fields else {
                group.pel.remove(id);
                deleted.push(id_reply(*id));
                remaining -= 1;
                continue;
            };
            let delivered = group.pel.get(id).map_or(0, |p| p.delivery_time);
            if min_idle != 0 && (now as i64 - delivered as i64) < min_idle {
                continue;
            }
            let Some(pending) = claim_one(group, *id, consumer, &mut consumer_seen, &mut created, now) else {
                continue;
            };
            pending.delivery_time = now;
            if !justid {
                pending.delivery_count += 1;
            }
            claimed.push(if justid { id_reply(*id) } else { entry_reply(*id, &fields) });
            remaining -= 1;
        }
        let cursor = candidates.get(examined).copied().unwrap_or(StreamId::MIN);
        let changed = consumer_seen || !claimed.is_empty() || !deleted.is_empty();
        Ok((Reply::Array(vec![id_reply(cursor), Reply::Array(claimed), Reply::Array(deleted)]), changed))
    })?;
    if created {
        notify_stream(ctx, key, &["xgroup-createconsumer"]);
    }
    Ok(reply)
}

fn pair(name: &'static str, value: Reply) -> (Reply, Reply) {
    (Reply::bulk(name), value)
}

fn opt_int(value: Option<u64>) -> Reply {
    value.map_or(Reply::Nil, |v| Reply::Int(v as i64))
}

/// The fields XINFO STREAM (plain or FULL) starts with.
fn stream_header(stream: &mut Stream, slot: &mut Slot) -> Result<Vec<(Reply, Reply)>, CmdError> {
    let (keys, nodes) = stream.radix_tree(slot)?;
    let first = stream.first_id(slot)?;
    let len = stream.len();
    let meta = stream.stream_meta();
    Ok(vec![
        pair("length", Reply::Int(len as i64)),
        pair("radix-tree-keys", Reply::Int(keys as i64)),
        pair("radix-tree-nodes", Reply::Int(nodes as i64)),
        pair("last-generated-id", id_reply(meta.last_id)),
        pair("max-deleted-entry-id", id_reply(meta.max_deleted_id)),
        pair("entries-added", Reply::Int(meta.entries_added as i64)),
        pair("recorded-first-entry-id", id_reply(first)),
    ])
}

/// ```text
/// XINFO STREAM key [FULL [COUNT count]]
/// ```
pub fn xinfo_stream(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let options = args.rest();
    inspect(ctx, &key, |stream: &mut Stream, slot| xinfo_stream_of(stream, slot, args, &options))
}

fn xinfo_stream_of(stream: &mut Stream, slot: &mut Slot, args: &Args, options: &[Bytes]) -> Result<Reply, CmdError> {
    if !stream.existed() {
        return Err(CmdError::NoSuchKey);
    }
    let edge = |stream: &mut Stream, slot: &mut Slot, rev: bool| -> Result<Reply, CmdError> {
        let mut entries = stream.entries_between(slot, StreamId::MIN, StreamId::MAX, 1, rev)?;
        Ok(entries.pop().map_or(Reply::Nil, |(id, fields)| entry_reply(id, &fields)))
    };
    if options.is_empty() {
        let mut fields = stream_header(stream, slot)?;
        fields.push(pair("groups", Reply::Int(stream.stream_meta().groups.len() as i64)));
        fields.push(pair("first-entry", edge(stream, slot, false)?));
        fields.push(pair("last-entry", edge(stream, slot, true)?));
        return Ok(Reply::Map(fields));
    }
    if (options.len() != 1 && options.len() != 3)
        || !options[0].eq_ignore_ascii_case(b"FULL")
        || (options.len() == 3 && !options[1].eq_ignore_ascii_case(b"COUNT"))
    {
        return Err(subcommand_syntax_error(args, "XINFO"));
    }
    let count = match options.get(2) {
        Some(arg) => super::args::parse_i64(arg).ok_or(CmdError::NotInteger)?.max(0) as usize,
        None => 10,
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let mut fields = stream_header(stream, slot)?;
    fields.push(pair("entries", Reply::Array(range_reply(stream, slot, StreamId::MIN, StreamId::MAX, count, false)?)));
    let extent = stream.extent(slot)?;
    let meta = stream.stream_meta();
    let groups = meta
        .groups
        .iter()
        .map(|(name, group)| {
            let pending = group
                .pel
                .iter()
                .take(limit)
                .map(|(id, p)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::Bulk(p.consumer.clone()),
                        Reply::Int(p.delivery_time as i64),
                        Reply::Int(p.delivery_count as i64),
                    ])
                })
                .collect();
            let consumers = group
                .consumers
                .iter()
                .map(|(cname, consumer)| {
                    let own: Vec<Reply> = group
                        .pending_of(cname)
                        .take(limit)
                        .map(|(id, p)| {
                            Reply::Array(vec![
                                id_reply(*id),
                                Reply::Int(p.delivery_time as i64),
                                Reply::Int(p.delivery_count as i64),
                            ])
                        })
                        .collect();
                    Reply::Map(vec![
                        pair("name", Reply::Bulk(cname.clone())),
                        pair("seen-time", Reply::Int(consumer.seen_time as i64)),
                        pair("pel-count", Reply::Int(group.pending_of(cname).count() as i64)),
                        pair("pending", Reply::Array(own)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                pair("name", Reply::Bulk(name.clone())),
                pair("last-delivered-id", id_reply(group.last_id)),
                pair("entries-read", opt_int(group.entries_read)),
                pair("lag", meta.lag(extent, group).map_or(Reply::Nil, Reply::Int)),
                pair("pel-count", Reply::Int(group.pel.len() as i64)),
                pair("pending", Reply::Array(pending)),
                pair("consumers", Reply::Array(consumers)),
            ])
        })
        .collect();
    fields.push(pair("groups", Reply::Array(groups)));
    Ok(Reply::Map(fields))
}

/// ```text
/// XINFO GROUPS key
/// ```
pub fn xinfo_groups(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    inspect(ctx, &key, |stream: &mut Stream, slot| {
        if !stream.existed() {
            return Err(CmdError::NoSuchKey);
        }
        let extent = stream.extent(slot)?;
        let meta = stream.stream_meta();
        Ok(Reply::Array(
            meta.groups
                .iter()
                .map(|(name, group)| {
                    Reply::Map(vec![
                        pair("name", Reply::Bulk(name.clone())),
                        pair("consumers", Reply::Int(group.consumers.len() as i64)),
                        pair("pending", Reply::Int(group.pel.len() as i64)),
                        pair("last-delivered-id", id_reply(group.last_id)),
                        pair("entries-read", opt_int(group.entries_read)),
                        pair("lag", meta.lag(extent, group).map_or(Reply::Nil, Reply::Int)),
                    ])
                })
                .collect(),
        ))
    })
}

/// ```text
/// XINFO CONSUMERS key group
/// ```
pub fn xinfo_consumers(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let group_name = args.next_bytes()?;
    let (existed, group) = inspect(ctx, &key, |stream: &mut Stream, _| {
        Ok((stream.existed(), stream.stream_meta().groups.get(&group_name).cloned()))
    })?;
    if !existed {
        return Err(CmdError::NoSuchKey);
    }
    let group = group.ok_or_else(|| no_group_for_key_error(&key, &group_name))?;
    let now = ctx.now_ms();
    Ok(Reply::Array(
        group
            .consumers
            .iter()
            .map(|(name, consumer)| {
                Reply::Map(vec![
                    pair("name", Reply::Bulk(name.clone())),
                    pair("pending", Reply::Int(group.pending_of(name).count() as i64)),
                    pair("idle", Reply::Int(now.saturating_sub(consumer.seen_time) as i64)),
                ])
            })
            .collect(),
    ))
}

/// ```text
/// XINFO HELP
/// ```
pub fn xinfo_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let lines = [
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
    ];
    Ok(Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        let id = |s: &str| parse_id_full(s.as_bytes(), 0, true, true).ok().map(|p| (p.id, p.seq_given));
        assert_eq!(id("5"), Some((StreamId::new(5, 0), true)));
        assert_eq!(id("5-3"), Some((StreamId::new(5, 3), true)));
        assert_eq!(id("5-*"), Some((StreamId::new(5, 0), false)));
        assert_eq!(id(" 5"), Some((StreamId::new(5, 0), true)));
        assert_eq!(id("+5"), Some((StreamId::new(5, 0), true)));
        assert_eq!(id("5--03"), Some((StreamId::new(5, u64::MAX - 2), true)));
        assert_eq!(id("5--3"), None);
        assert_eq!(id("-"), None);
        assert_eq!(id("-5"), None);
        assert_eq!(id("5-"), None);
        assert_eq!(id("18446744073709551616"), None);
        assert_eq!(id("0x5"), None);
        assert_eq!(parse_id_full(b"-", 0, false, false).ok().map(|p| p.id), Some(StreamId::MIN));
        assert_eq!(parse_id_full(b"7", u64::MAX, false, false).ok().map(|p| p.id), Some(StreamId::new(7, u64::MAX)));
    }
}
