//! One client connection: read, decode, dispatch, encode, write; plus pushed pub/sub messages.
//!
//! Requests are decoded from the read buffer and executed in order; their replies accumulate in the write
//! buffer, which is flushed once the buffer holds no complete request (or once it passes
//! [`FLUSH_THRESHOLD`]). Nothing more is read while a flush is pending, so a client that does not read
//! its replies stops being served instead of making the server buffer without bound. Output buffer
//! limits (`client-output-buffer-limit`, pushed messages included) are `super::obuf`'s.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::blocking::Waiter;
use super::cancel::Cancel;
use super::client::{Client, ClientHandle, ReplyMode};
use super::dispatch::{self, Outcome};
use super::gate;
use super::Server;
use crate::cmd::table::lookup;
use crate::cmd::Ctx;
use crate::resp::{DecodeError, Decoder, Limits, Reply};

/// Write buffer size that forces a flush before more requests are executed.
pub const FLUSH_THRESHOLD: usize = 64 * 1024;

/// Serves one connection until it closes, is killed, or the server shuts down.
pub async fn serve(server: Arc<Server>, socket: TcpStream) {
    let addr = socket.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let laddr = socket.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = socket.set_nodelay(true);
    super::settings::set_keepalive(&socket, server.live.tcp_keepalive());
    let (handle, mut pushes) = ClientHandle::new(server.clients.next_id(), addr, laddr);
    server.clients.add(handle.clone());
    let mut client = Client::new(handle.clone());
    client.authenticated = !server.live.auth_required();
    client.cancel = Cancel::with_socket(std::os::fd::AsRawFd::as_raw_fd(&socket));
    let _ = handle.intro.fd.set(std::os::fd::AsRawFd::as_raw_fd(&socket));
    handle.obuf.attach(server.live.obuf.clone());
    let mut shutdown = server.shutdown_receiver();
    // The waits for shutdown, a change of `timeout` and CLIENT KILL outlive each idle wait below: made
    // afresh per wait, each registered and unregistered its waiter (under a lock the shutdown and timeout
    // lists share with every connection) once per request batch.
    let stopped = {
        let mut receiver = server.shutdown_receiver();
        async move {
            // `wait_for` also sees a shutdown that began before this connection subscribed.
            let _ = receiver.wait_for(|stopping| *stopping).await;
        }
    };
    tokio::pin!(stopped);
    let killed = {
        let handle = handle.clone();
        async move { handle.killed().await }
    };
    tokio::pin!(killed);
    let mut idle_timeout = server.live.timeout_receiver();
    let mut idle_limit = *idle_timeout.borrow_and_update();
    let timeout_changed = next_change(idle_timeout);
    tokio::pin!(timeout_changed);
    let (mut reader, mut writer) = socket.into_split();
    let mut rbuf = BytesMut::with_capacity(super::bufsize::READ_LEN);
    let mut wbuf = BytesMut::with_capacity(super::bufsize::WRITE_LEN);
    // Frees the read buffer of an idle client (`bufsize`); re-armed from the last read, not per request.
    let idle_free = tokio::time::sleep(super::bufsize::IDLE_FREE);
    tokio::pin!(idle_free);
    let mut idle_free_armed = true;
    let mut decoder = Decoder::default();
    // A decoded request that must run off the worker, carried from the inline pass to the off-worker one.
    let mut pending = None;
    // The script turn, taken for the pending script request after waiting for it (`script::turn`).
    let mut turn = None;
    // The turn a pass's scripts ran with, given back once the pass has left the gate (see `Buffers`).
    let mut pass_turn = None;
    'connection: loop {
        // Execute every complete request in the buffer, off the runtime's workers (see `execute_off_worker`).
        loop {
            let mut io = Buffers {
                decoder: &mut decoder,
                rbuf: &mut rbuf,
                wbuf: &mut wbuf,
                pending: &mut pending,
                pushes: &mut pushes,
                turn: &mut turn,
                pass_turn: &mut pass_turn,
            };
            let step = if io.rbuf.is_empty() && io.pending.is_none() {
                Step::NeedInput
            } else {
                // The fast path: inline on this worker, unless a long command runs (`gate`).
                let inline = server.gate.try_inline();
                let step = if inline.is_some() {
                    execute_grouped(&server, &mut client, &mut io, true)
                } else if waits_for_turn(&server, &client, &mut io) {
                    Step::ScriptWait
                } else {
                    Step::OffWorker
                };
                drop(inline);
                let step = match step {
                    Step::OffWorker => tokio::task::block_in_place(|| {
                        let _off_worker = server.gate.off_worker();
                        execute_grouped(&server, &mut client, &mut io, false)
                    }),
                    step => step,
                };
                // After the gate's guards: the next holder of the turn finds the gate as this pass left it.
                drop(io.pass_turn.take());
                step
            };
            match step {
                Step::NeedInput => break,
                Step::OffWorker => unreachable!("off-worker execution runs every request"),
                Step::ScriptWait => {
                    // Another connection's script command runs: wait as a task, the worker serves others.
                    let scripting = &server.scripting;
                    tokio::select! {
                        biased;
                        taken = scripting.turn.take(scripting.long_flag(), || scripting.busy_at()) => turn = taken,
                        _ = &mut killed => break 'connection,
                        _ = &mut stopped => break 'connection,
                    }
                }
                Step::Close => break 'connection,
                Step::Transfer(transfer) => {
                    if flush(&server, &handle, &mut writer, &mut wbuf).await.is_ok() {
                        send_transfer(&server, &handle, &mut writer, transfer, &mut shutdown).await;
                    }
                    break 'connection;
                }
                Step::Unwritten(waiter) => {
                    if let Some(waiter) = waiter {
                        cancel_wait(&server, &waiter).await;
                    }
                    break 'connection;
                }
                Step::Flush => {
                    if flush(&server, &handle, &mut writer, &mut wbuf).await.is_err() {
                        break 'connection;
                    }
                }
                Step::Paused => {
                    // CLIENT PAUSE holds the request in `pending`: earlier replies go out first.
                    if flush(&server, &handle, &mut writer, &mut wbuf).await.is_err() {
                        break 'connection;
                    }
                    let writes = pending.as_ref().and_then(|argv| super::pause::request_writes(&server, &client, argv));
                    let writes = writes.unwrap_or(true);
                    if !super::pause::wait(&server, &handle, writes, &mut reader, &mut rbuf, &mut shutdown).await {
                        break 'connection;
                    }
                }
                Step::Blocked(waiter) => {
                    // Earlier pipelined replies go out before the wait.
                    if flush(&server, &handle, &mut writer, &mut wbuf).await.is_err() {
                        cancel_wait(&server, &waiter).await;
                        break 'connection;
                    }
                    let Some(reply) = wait(&server, &handle, &waiter, &mut reader, &mut rbuf, &mut shutdown).await
                    else {
                        break 'connection;
                    };
                    emit(&mut client, reply, &mut wbuf);
                    if client.close || handle.is_killed() {
                        break 'connection;
                    }
                }
            }
        }
        if flush(&server, &handle, &mut writer, &mut wbuf).await.is_err() {
            break;
        }
        // `timeout`: an idle client is closed, except a subscriber (a blocked one waits in `wait`).
        let idle_deadline = (idle_limit > 0 && !client.in_pubsub_context()).then(|| {
            let last = *handle.last_active.lock().unwrap_or_else(|p| p.into_inner());
            tokio::time::Instant::from_std(last + std::time::Duration::from_secs(idle_limit))
        });
        // Checked here too (two atomic loads), as the waits for them come after the socket's below.
        if handle.is_killed() || server.shutting_down() {
            break;
        }
        tokio::select! {
            // Pushed messages and the socket first (no lock in either): when a request wakes the task,
            // nothing else is polled.
            biased;
            Some(message) = pushes.recv() => {
                deliver(&handle, &client, message, &mut wbuf);
                while let Ok(message) = pushes.try_recv() {
                    deliver(&handle, &client, message, &mut wbuf);
                    if wbuf.len() >= FLUSH_THRESHOLD {
                        break;
                    }
                }
            }
            read = super::bufsize::read(&mut reader, &mut rbuf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    server.stats.net_input.fetch_add(n as u64, Ordering::Relaxed);
                    server.metrics.reads.fetch_add(1, Ordering::Relaxed);
                    // Redis's "last interaction": once per read, not per command.
                    let now = Instant::now();
                    *handle.last_active.lock().unwrap_or_else(|p| p.into_inner()) = now;
                    if !idle_free_armed {
                        idle_free.as_mut().reset(tokio::time::Instant::from_std(now + super::bufsize::IDLE_FREE));
                        idle_free_armed = true;
                    }
                }
            },
            _ = &mut killed => break,
            _ = &mut stopped => break,
            receiver = &mut timeout_changed => {
                let mut receiver = receiver;
                idle_limit = *receiver.borrow_and_update();
                timeout_changed.set(next_change(receiver));
            }
            _ = &mut idle_free, if idle_free_armed => {
                let last = *handle.last_active.lock().unwrap_or_else(|p| p.into_inner());
                match super::bufsize::idle_check(last, &rbuf, Instant::now()) {
                    Some(next) => idle_free.as_mut().reset(tokio::time::Instant::from_std(next)),
                    None => {
                        rbuf = BytesMut::new();
                        handle.intro.qbuf.store(0, Ordering::Relaxed);
                        handle.intro.qbuf_free.store(0, Ordering::Relaxed);
                        idle_free_armed = false;
                    }
                }
            }
            _ = tokio::time::sleep_until(idle_deadline.unwrap_or_else(tokio::time::Instant::now)), if idle_deadline.is_some() => {
                tracing::debug!(client = handle.id, "closing idle client (timeout)");
                break;
            }
        }
    }
    // Released before the last replies go out: a client that has read QUIT's +OK no longer counts in
    // PUBSUB NUMSUB, CLIENT LIST or a WATCH, as in Redis (which frees the client in the same turn).
    cleanup(&server, &mut client);
    let _ = flush(&server, &handle, &mut writer, &mut wbuf).await;
    let _ = writer.shutdown().await;
}

/// Resolves, handing the receiver back, once the watched value changes (or its sender is gone: then never).
async fn next_change<T>(mut receiver: watch::Receiver<T>) -> watch::Receiver<T> {
    if receiver.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
    receiver
}

/// Where [`execute_buffered`] stopped.
enum Step {
    /// No complete request is left: read more.
    NeedInput,
    /// The write buffer passed [`FLUSH_THRESHOLD`]: flush, then continue.
    Flush,
    /// The last request blocked the client: wait for the waiter's reply.
    Blocked(Arc<Waiter>),
    /// The connection must close (QUIT, killed, protocol error) once the buffer is flushed.
    Close,
    /// The next request (in `pending`) must run off the runtime's workers.
    OffWorker,
    /// The next request (in `pending`) is held by CLIENT PAUSE.
    Paused,
    /// The next request (in `pending`) is a script and another connection's script command runs: wait for
    /// the script turn (`script::turn`).
    ScriptWait,
    /// SYNC: send the file, then close.
    Transfer(super::fullsync::Transfer),
    /// The WAL records of the pass could not be written: its replies were dropped unsent, and the connection
    /// closes (cancelling the wait of a blocked last request).
    Unwritten(Option<Arc<Waiter>>),
}

/// The connection's buffers, as [`execute_buffered`] needs them.
struct Buffers<'a, 't> {
    decoder: &'a mut Decoder,
    rbuf: &'a mut BytesMut,
    wbuf: &'a mut BytesMut,
    pending: &'a mut Option<Vec<Bytes>>,
    pushes: &'a mut tokio::sync::mpsc::UnboundedReceiver<Reply>,
    /// The script turn, taken for the pending request.
    turn: &'a mut Option<crate::script::turn::TurnGuard<'t>>,
    /// The script turn, once a script of this pass took it, kept to the pass's end: the pipeline's next
    /// scripts run without waking anyone in between (each hand-over costs a task wake-up and, if another
    /// connection's script then ran in between, the other worker's cache misses). Given back by the
    /// caller once the pass has left the gate (`server::gate`): given back inside an off-worker pass, it
    /// woke the next holder while the gate was still closed by this pass, that holder ran off the
    /// workers too and closed it for the next, and so on: a chain of `block_in_place` (a thread each)
    /// that outlived the long script that started it (docs/performance.md, branch `script3`).
    pass_turn: &'a mut Option<crate::script::turn::TurnGuard<'t>>,
}

/// [`execute_buffered`] with the pass's WAL appends grouped (`Engine::group_writes`): one write per slot
/// for a pipeline, made before any of its replies can be sent. If that write fails, no reply of the pass
/// goes out (the writes were never acknowledged) and the connection closes.
fn execute_grouped<'t>(server: &'t Arc<Server>, client: &mut Client, io: &mut Buffers<'_, 't>, inline: bool) -> Step {
    let (step, written) = server.engine.group_writes(|| execute_buffered(server, client, io, inline));
    match written {
        Ok(()) => step,
        Err(error) => {
            tracing::error!(client = client.id(), %error, "WAL write of a pipeline failed; closing the connection");
            io.wbuf.clear();
            Step::Unwritten(match step {
                Step::Blocked(waiter) => Some(waiter),
                _ => None,
            })
        }
    }
}

/// Executes every complete request in the read buffer, encoding replies into the write buffer, until one
/// of [`Step`]. `inline` (on a runtime worker, admitted by the gate): stops with [`Step::OffWorker`] before
/// a request that may take long (`gate::runs_inline`), leaving it in `pending`. Otherwise (off the workers,
/// see `gate`) it runs anything.
fn execute_buffered<'t>(server: &'t Arc<Server>, client: &mut Client, io: &mut Buffers<'_, 't>, inline: bool) -> Step {
    loop {
        let mut buffered = io.rbuf.len();
        // The buffer's room from this request on, before the request is split off it (`qbuf-free`).
        let mut room = io.rbuf.capacity();
        let argv = match io.pending.take() {
            Some(argv) => {
                // Decoded by an earlier pass: CLIENT LIST's `qbuf` still counts it, as Redis's query buffer.
                buffered += request_len(&argv);
                room += request_len(&argv);
                argv
            }
            None => {
                let limits = Limits { max_bulk: server.proto_max_bulk_len(), ..Limits::default() };
                match io.decoder.decode(io.rbuf, &limits) {
                    Ok(argv) if argv.is_empty() => continue,
                    Ok(argv) => argv,
                    Err(DecodeError::Incomplete) => return Step::NeedInput,
                    Err(DecodeError::Invalid(message)) => {
                        tracing::debug!(client = client.id(), %message, "protocol error");
                        Reply::error(format!("ERR Protocol error: {message}")).encode(client.proto, io.wbuf);
                        return Step::Close;
                    }
                }
            }
        };
        let found = lookup(&argv[0]);
        if inline && !found.is_none_or(|spec| gate::request_runs_inline(spec, &argv)) {
            *io.pending = Some(argv);
            return Step::OffWorker;
        }
        // Taken for this (pending) request only: a request that now waits for a pause, or runs off the
        // workers, gives it back.
        let held_turn = io.turn.take();
        if super::pause::must_wait(server, client, &argv) {
            *io.pending = Some(argv);
            return Step::Paused;
        }
        let runs_script = client.multi.is_none() && found.is_some_and(crate::script::runs_script);
        let turn = if runs_script {
            let scripting = &server.scripting;
            match io.pass_turn.take().or(held_turn).or_else(|| scripting.turn.try_take()) {
                Some(turn) => Some(turn),
                // A pipeline's request, a request off the workers, and any request while the running
                // script is long wait for the turn as a task, until the script passes the busy threshold
                // (then the dispatch answers `-BUSY`). The last request in the buffer (a client waiting
                // for each reply, `-P 1`) behind a short script waits for the command lock on its worker
                // instead: it runs as soon as the lock is free, while the turn's holder still sends its
                // reply, and that overlap gave more requests per second at `-P 1` than waiting for the
                // turn (docs/performance.md, issue 9, branch `scriptlock`); if the script turns out long,
                // the dispatch gives up (`Outcome::WaitTurn`) and the request waits for the turn too.
                None if (!io.rbuf.is_empty() || !inline || scripting.long_flag().load(Ordering::SeqCst))
                    && scripting.busy_at().is_none_or(|at| at > std::time::Instant::now()) =>
                {
                    *io.pending = Some(argv);
                    return Step::ScriptWait;
                }
                None => None,
            }
        } else {
            None
        };
        client.may_wait_turn = runs_script && inline && turn.is_none();
        client.handle.intro.note(client, buffered, room, io.wbuf, &argv);
        let publishes = argv[0].eq_ignore_ascii_case(b"publish") || argv[0].eq_ignore_ascii_case(b"spublish");
        client.output_pending = !io.wbuf.is_empty();
        let mut ctx = Ctx { server, engine: &server.engine, client };
        let outcome = dispatch::execute(&mut ctx, argv);
        client.may_wait_turn = false;
        if turn.is_some() {
            *io.pass_turn = turn;
        }
        client.handle.intro.argv_mem.store(0, Ordering::Relaxed);
        // Messages pushed to this client by its own PUBLISH (to a channel it listens to, in RESP3) precede
        // the command's reply, as in Redis; MONITOR lines and tracking invalidations of its own command
        // follow the reply (Redis defers them to after the command).
        if publishes {
            while let Ok(message) = io.pushes.try_recv() {
                deliver(&client.handle, client, message, io.wbuf);
            }
        }
        match outcome {
            Outcome::Reply(reply) => emit(client, reply, io.wbuf),
            Outcome::Blocked(waiter) => return Step::Blocked(waiter),
            Outcome::WaitTurn(argv) => {
                *io.pending = Some(argv);
                return Step::ScriptWait;
            }
        }
        if client.close || client.handle.is_killed() {
            return Step::Close;
        }
        if let Some(transfer) = client.transfer.take() {
            return Step::Transfer(transfer);
        }
        if io.wbuf.len() >= FLUSH_THRESHOLD && !super::obuf::holds(&client.handle, io.wbuf.len()) {
            return Step::Flush;
        }
    }
}

/// With the gate closed (a long command runs): true if the next request is a script command that must
/// wait for the script turn, which it then does as a task rather than in `block_in_place` (a thread
/// hand-off per connection, only to find the turn taken: with 50 clients sending scripts, one long
/// script made 50 threads, docs/performance.md, branch `script3`). Decodes the next request into
/// `pending` if it is a complete multibulk frame. Takes the turn if it is free (the request then runs off
/// the workers with it).
fn waits_for_turn<'t>(server: &'t Server, client: &Client, io: &mut Buffers<'_, 't>) -> bool {
    if io.turn.is_some() || client.multi.is_some() {
        return false;
    }
    if io.pending.is_none() {
        // Only a multibulk frame: a bad one is left in the buffer, as it was, for the off-worker pass to
        // answer (an inline request is consumed by its decoding even when invalid).
        if io.rbuf.first() != Some(&b'*') {
            return false;
        }
        let limits = Limits { max_bulk: server.proto_max_bulk_len(), ..Limits::default() };
        match io.decoder.decode(io.rbuf, &limits) {
            Ok(argv) if !argv.is_empty() => *io.pending = Some(argv),
            _ => return false,
        }
    }
    let Some(argv) = io.pending.as_ref() else { return false };
    if !lookup(&argv[0]).is_some_and(crate::script::runs_script) {
        return false;
    }
    let scripting = &server.scripting;
    if scripting.busy_at().is_some_and(|at| at <= std::time::Instant::now()) {
        return false;
    }
    match scripting.turn.try_take() {
        Some(turn) => {
            *io.turn = Some(turn);
            false
        }
        None => true,
    }
}

/// The bytes of `argv` as a RESP multibulk request.
fn request_len(argv: &[Bytes]) -> usize {
    let digits = |n: usize| n.to_string().len();
    3 + digits(argv.len()) + argv.iter().map(|arg| 5 + digits(arg.len()) + arg.len()).sum::<usize>()
}

/// Encodes a command's reply, then applies the client's output buffer limits (`obuf::after_reply`).
fn emit(client: &mut Client, reply: Reply, wbuf: &mut BytesMut) {
    encode_reply(client, reply, wbuf);
    super::obuf::after_reply(client, wbuf);
}

/// Encodes a command's reply, as CLIENT REPLY allows. Pushes within it (the confirmations of SUBSCRIBE
/// and its kin) go out whatever the mode, in RESP2 too, as Redis sends them.
fn encode_reply(client: &mut Client, reply: Reply, wbuf: &mut BytesMut) {
    match client.reply_mode {
        ReplyMode::On => return reply.encode(client.proto, wbuf),
        ReplyMode::Off => {}
        ReplyMode::SkipNext => client.reply_mode = ReplyMode::Skip,
        ReplyMode::Skip => client.reply_mode = ReplyMode::On,
    }
    match reply {
        Reply::Push(_) => reply.encode(client.proto, wbuf),
        Reply::Many(parts) => {
            for part in parts.into_iter().filter(|p| matches!(p, Reply::Push(_))) {
                part.encode(client.proto, wbuf);
            }
        }
        _ => {}
    }
}

/// Waits for a blocked client's reply: served, timed out or CLIENT UNBLOCKed. Meanwhile the socket is still
/// read (into `rbuf`, executed after the wait, as Redis queues a blocked client's input) so that a client
/// that disconnects is noticed and removed. `None` when the connection must end.
async fn wait(
    server: &Server,
    handle: &ClientHandle,
    waiter: &Arc<Waiter>,
    reader: &mut OwnedReadHalf,
    rbuf: &mut BytesMut,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Reply> {
    let deadline = waiter.deadline();
    let mut expired = false;
    loop {
        if let Some(reply) = server.blocking.outcome(waiter, expired) {
            return Some(reply);
        }
        let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now));
        tokio::select! {
            _ = waiter.changed() => {}
            _ = sleep, if deadline.is_some() && !expired => expired = true,
            read = reader.read_buf(rbuf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    server.stats.net_input.fetch_add(n as u64, Ordering::Relaxed);
                }
            },
            _ = handle.killed() => break,
            _ = shutdown.wait_for(|stopping| *stopping) => break,
        }
    }
    cancel_wait(server, waiter).await;
    None
}

/// Removes the waiter of a connection that is ending (after a serve pass that is trying it, if any).
async fn cancel_wait(server: &Server, waiter: &Arc<Waiter>) {
    while !server.blocking.cancel(waiter) {
        waiter.changed().await;
    }
}

fn deliver(handle: &ClientHandle, client: &Client, message: Reply, wbuf: &mut BytesMut) {
    let size = super::obuf::encoded_len(&message);
    message.encode(client.proto, wbuf);
    handle.delivered(size);
}

/// How long a SYNC client may leave a chunk unread (Redis's default `repl-timeout`): the snapshot it holds
/// keeps before-images of every write and blocks other saves.
const TRANSFER_STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends a SYNC transfer's chunks as they come; stops early (dropping the channel, which ends the writing
/// thread) when the client is killed or the server shuts down.
async fn send_transfer(
    server: &Server,
    handle: &ClientHandle,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    mut transfer: super::fullsync::Transfer,
    shutdown: &mut watch::Receiver<bool>,
) {
    loop {
        let chunk = tokio::select! {
            chunk = transfer.chunks.recv() => match chunk {
                Some(chunk) => chunk,
                None => return,
            },
            _ = handle.killed() => return,
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        };
        tokio::select! {
            written = tokio::time::timeout(TRANSFER_STALL_LIMIT, writer.write_all(&chunk)) => match written {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::warn!(client = handle.id, "SYNC client read nothing for 60 s; closing it");
                    return;
                }
            },
            _ = handle.killed() => return,
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        server.stats.net_output.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
}

/// Writes the buffer out; gives up if the client is killed meanwhile (a client that does not read would
/// otherwise keep its task waiting forever).
async fn flush(
    server: &Server,
    handle: &ClientHandle,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    wbuf: &mut BytesMut,
) -> std::io::Result<()> {
    if wbuf.is_empty() {
        return Ok(());
    }
    if handle.obuf.closing() {
        return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "output buffer limit"));
    }
    // Most replies fit the socket's buffer: one write, without registering a waiter for the kill signal
    // (a lock to add it and one to remove it, per flush).
    let sent = match writer.try_write(wbuf) {
        Ok(n) => n,
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(error) => return Err(error),
    };
    if sent < wbuf.len() {
        tokio::select! {
            written = super::obuf::write_all(handle, writer, &wbuf[sent..]) => written?,
            _ = handle.killed() => {
                return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "client killed"));
            }
        }
    }
    server.stats.net_output.fetch_add(wbuf.len() as u64, Ordering::Relaxed);
    server.metrics.writes.fetch_add(1, Ordering::Relaxed);
    wbuf.clear();
    super::bufsize::after_flush(wbuf);
    Ok(())
}

/// Releases everything a closing client held: subscriptions, watches, its registry entry.
fn cleanup(server: &Server, client: &mut Client) {
    let id = client.id();
    for channel in std::mem::take(&mut client.channels) {
        server.pubsub.unsubscribe(&channel, id);
    }
    for pattern in std::mem::take(&mut client.patterns) {
        server.pubsub.punsubscribe(&pattern, id);
    }
    for channel in std::mem::take(&mut client.shard_channels) {
        server.pubsub.sunsubscribe(&channel, id);
    }
    let watched = std::mem::take(&mut client.watched);
    server.watches.unwatch(id, watched.into_iter().map(|w| (w.db, w.key)));
    server.intro.client_gone(&client.handle);
    server.clients.remove(id);
}
