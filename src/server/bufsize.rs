//! How large a connection's read and write buffers stay, as Redis sizes its query and reply buffers.
//!
//! - The read (query) buffer starts at 16 KiB (Redis's `PROTO_IOBUF_LEN`). Before a read into an empty
//!   buffer, [`prepare_read`] takes back the room of the requests already split off it (without allocating)
//!   and replaces a buffer grown past 32 KiB (`PROTO_RESIZE_THRESHOLD`: a large request was read) by a new
//!   16 KiB one, as Redis's `clientsCron` trims a query buffer larger than its recent peak.
//! - An idle client's read buffer is freed after [`IDLE_FREE`] (Redis frees the query buffer of a client
//!   idle for more than 2 s); [`read`] allocates it again only once input is there. The connection checks
//!   with a timer re-armed from the last read at most once per [`IDLE_FREE`], never per request.
//! - The write buffer goes back to 16 KiB after a flush that emptied it when it had grown past
//!   [`WRITE_KEEP`] (Redis frees its reply blocks once written), so one large reply does not stay
//!   allocated for the rest of the connection.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;

/// The read buffer's standard size (Redis's `PROTO_IOBUF_LEN`).
pub const READ_LEN: usize = 16 * 1024;
/// An empty read buffer larger than this is replaced by a standard one (Redis's `PROTO_RESIZE_THRESHOLD`).
pub const READ_RESIZE_ABOVE: usize = 32 * 1024;
/// Idle time after which a client's read buffer is freed (Redis: more than 2 s).
pub const IDLE_FREE: Duration = Duration::from_secs(2);
/// The write buffer's standard size.
pub const WRITE_LEN: usize = 16 * 1024;
/// A flushed write buffer larger than this is replaced by a standard one: twice the batch size that forces
/// a flush, so a pipeline of ordinary replies never reallocates.
pub const WRITE_KEEP: usize = 2 * super::connection::FLUSH_THRESHOLD;

/// Reads more input into `rbuf`: a freed buffer is allocated again only once the socket is readable.
pub async fn read(reader: &mut OwnedReadHalf, rbuf: &mut BytesMut) -> std::io::Result<usize> {
    if rbuf.capacity() == 0 {
        reader.readable().await?;
    }
    prepare_read(rbuf);
    reader.read_buf(rbuf).await
}

/// Sizes an empty read buffer before a read (see the module's text).
pub fn prepare_read(rbuf: &mut BytesMut) {
    if !rbuf.is_empty() {
        return;
    }
    if rbuf.capacity() < READ_LEN {
        // The split-off requests are gone (their bytes were copied where they are kept): reuse their room.
        let _reclaimed = rbuf.try_reclaim(READ_LEN);
    }
    if rbuf.capacity() > READ_RESIZE_ABOVE || rbuf.capacity() == 0 {
        *rbuf = BytesMut::with_capacity(READ_LEN);
    }
}

/// After an idle-timer tick: `None` when the read buffer is to be freed now (idle for [`IDLE_FREE`] since
/// `last_active`, nothing buffered), else when to look again.
pub fn idle_check(
    last_active: std::time::Instant,
    rbuf: &BytesMut,
    now: std::time::Instant,
) -> Option<std::time::Instant> {
    let due = last_active + IDLE_FREE;
    if due <= now && rbuf.is_empty() {
        None
    } else {
        Some(due.max(now + IDLE_FREE / 4))
    }
}

/// Shrinks a just-flushed (empty) write buffer that grew past [`WRITE_KEEP`].
pub fn after_flush(wbuf: &mut BytesMut) {
    if wbuf.capacity() > WRITE_KEEP {
        *wbuf = BytesMut::with_capacity(WRITE_LEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_read_buffer_takes_its_room_back_and_a_large_one_shrinks() {
        let mut rbuf = BytesMut::with_capacity(READ_LEN);
        rbuf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let frame = rbuf.split_to(14);
        assert_eq!(rbuf.capacity(), READ_LEN - 14);
        // The frame is still alive: nothing is reclaimed, nothing allocated.
        prepare_read(&mut rbuf);
        assert_eq!(rbuf.capacity(), READ_LEN - 14);
        drop(frame);
        prepare_read(&mut rbuf);
        assert_eq!(rbuf.capacity(), READ_LEN);

        let mut big = BytesMut::with_capacity(400_000);
        big.extend_from_slice(&[b'A'; 1000]);
        prepare_read(&mut big);
        assert_eq!(big.capacity(), 400_000, "a buffer holding input is left alone");
        big.clear();
        prepare_read(&mut big);
        assert_eq!(big.capacity(), READ_LEN);

        let mut freed = BytesMut::new();
        prepare_read(&mut freed);
        assert_eq!(freed.capacity(), READ_LEN);
    }

    #[test]
    fn idle_buffers_are_freed_after_two_seconds_only_when_empty() {
        let start = std::time::Instant::now();
        let empty = BytesMut::with_capacity(READ_LEN);
        assert!(idle_check(start, &empty, start + Duration::from_millis(1999)).is_some());
        assert_eq!(idle_check(start, &empty, start + IDLE_FREE), None);
        let mut partial = BytesMut::with_capacity(READ_LEN);
        partial.extend_from_slice(b"*2\r\n");
        assert!(idle_check(start, &partial, start + IDLE_FREE * 3).is_some());
        let next = idle_check(start, &empty, start + Duration::from_millis(500)).expect("not yet");
        assert_eq!(next, start + IDLE_FREE);
    }

    #[test]
    fn a_write_buffer_grown_by_a_large_reply_shrinks_after_its_flush() {
        let mut wbuf = BytesMut::with_capacity(WRITE_LEN);
        wbuf.extend_from_slice(&vec![0u8; 1 << 20]);
        wbuf.clear();
        after_flush(&mut wbuf);
        assert_eq!(wbuf.capacity(), WRITE_LEN);
        let mut ordinary = BytesMut::with_capacity(WRITE_LEN);
        ordinary.extend_from_slice(&[0u8; 70_000]);
        ordinary.clear();
        let kept = ordinary.capacity();
        after_flush(&mut ordinary);
        assert_eq!(ordinary.capacity(), kept);
    }
}
