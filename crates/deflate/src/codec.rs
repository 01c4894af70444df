//! One message compressed or inflated (RFC 7692 section 7.2): raw DEFLATE, each message ended
//! by a sync flush whose last four bytes (`00 00 ff ff`) are left off the wire.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::params::{MAX_WINDOW_BITS, MIN_WINDOW_BITS};

/// The four bytes a sync flush ends with, which a sender leaves off and a receiver puts back.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Why a message could not be compressed or inflated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The compressed bytes are not a DEFLATE stream (or need a window this message did not
    /// carry: the sender kept its context although it agreed not to).
    #[error("the message does not inflate: {0}")]
    Corrupt(String),
    /// The message inflates to more than the receiver's limit.
    #[error("the message inflates to more than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A window outside 9 to 15 bits, or a level above 9.
    #[error("bad compression settings: window {window_bits} bits, level {level}")]
    BadSettings {
        /// The window asked for.
        window_bits: u8,
        /// The level asked for.
        level: u32,
    },
    /// zlib refused to compress (it does not for memory it was given).
    #[error("compression failed: {0}")]
    Compress(String),
}

/// Compresses messages one at a time, each with an empty window (no context takeover), so a
/// compressed message can go to any peer that agreed to the same window.
///
/// Keeps zlib's state (about 260 KiB at a 15-bit window) between messages to avoid setting it
/// up each time: hold one per thread, not one per connection.
///
/// ```
/// use cerebrum_deflate::{Deflater, Inflater};
/// let mut deflater = Deflater::new(1, 15)?;
/// let text = br#"{"type":"study_metrics_update","payload":{"focus":0.91,"focusTrend":[0.9,0.91]}}"#;
/// let compressed = deflater.compress(text)?;
/// let mut inflater = Inflater::new(false);
/// assert_eq!(inflater.inflate(&compressed, 1 << 20)?, text.to_vec());
/// # Ok::<(), cerebrum_deflate::CodecError>(())
/// ```
pub struct Deflater {
    compress: Compress,
    window_bits: u8,
    level: u32,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("window_bits", &self.window_bits)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor at `level` (0 to 9; 1 is fastest) with a window of `window_bits` (9 to 15).
    ///
    /// # Errors
    /// [`CodecError::BadSettings`] for a level or window out of range.
    pub fn new(level: u32, window_bits: u8) -> Result<Self, CodecError> {
        if level > 9 || !(MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&window_bits) {
            return Err(CodecError::BadSettings { window_bits, level });
        }
        Ok(Self {
            compress: Compress::new_with_window_bits(Compression::new(level), false, window_bits),
            window_bits,
            level,
        })
    }

    /// The window this compressor uses, in bits.
    #[must_use]
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// The level this compressor uses.
    #[must_use]
    pub fn level(&self) -> u32 {
        self.level
    }

    /// `message` compressed on its own, as it goes on the wire (without the sync flush's
    /// last four bytes).
    ///
    /// # Errors
    /// [`CodecError::Compress`] if zlib refuses (not expected).
    pub fn compress(&mut self, message: &[u8]) -> Result<Vec<u8>, CodecError> {
        self.compress.reset();
        let mut out = Vec::with_capacity(message.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = self.compress.total_in();
            self.compress
                .compress_vec(
                    message.get(consumed..).unwrap_or_default(),
                    &mut out,
                    FlushCompress::Sync,
                )
                .map_err(|err| CodecError::Compress(err.to_string()))?;
            consumed += progress(before, self.compress.total_in());
            // The flush is complete once every byte went in and zlib stopped short of the room
            // it had.
            if consumed >= message.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        Ok(out)
    }
}

/// How far a zlib counter moved (it only grows; the moves here are within one slice).
fn progress(before: u64, after: u64) -> usize {
    usize::try_from(after.saturating_sub(before)).unwrap_or(usize::MAX)
}

/// Inflates messages, with or without the window of the messages before (context
/// takeover), never beyond a size limit.
///
/// The state is about 7 KiB, and up to 32 KiB of window once used.
///
/// ```
/// use cerebrum_deflate::{CodecError, Inflater};
/// let mut inflater = Inflater::new(false);
/// assert!(matches!(inflater.inflate(b"\xff\xff\xff", 1024), Err(CodecError::Corrupt(_))));
/// ```
pub struct Inflater {
    decompress: Decompress,
    takeover: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("takeover", &self.takeover)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// An inflater; `takeover` when the sender keeps its window from one message to the next
    /// (it did not agree to `*_no_context_takeover`).
    #[must_use]
    pub fn new(takeover: bool) -> Self {
        Self {
            decompress: Decompress::new_with_window_bits(false, MAX_WINDOW_BITS),
            takeover,
        }
    }

    /// The message that `compressed` (as it came off the wire) inflates to, if it is at most
    /// `limit` bytes.
    ///
    /// After an error the window is lost: with context takeover, the connection cannot go on.
    ///
    /// # Errors
    /// [`CodecError::Corrupt`] for bytes that are not DEFLATE, [`CodecError::TooLarge`] past
    /// `limit`.
    pub fn inflate(&mut self, compressed: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
        if !self.takeover {
            self.decompress.reset(false);
        }
        // Room for up to `limit + 1` bytes, grown as needed: one byte past the limit tells
        // that the message is too large, and no more is ever allocated.
        let bound = limit.saturating_add(1);
        let mut out: Vec<u8> =
            Vec::with_capacity(bound.min(compressed.len().saturating_mul(4) + 64));
        'message: for input in [compressed, &TAIL[..]] {
            let mut consumed = 0;
            loop {
                if out.len() == out.capacity() {
                    if out.len() >= bound {
                        return Err(self.fail(CodecError::TooLarge { limit }));
                    }
                    out.reserve_exact(out.len().max(256).min(bound - out.len()));
                }
                let (in_before, out_before) = (self.decompress.total_in(), out.len());
                let status = self
                    .decompress
                    .decompress_vec(
                        input.get(consumed..).unwrap_or_default(),
                        &mut out,
                        FlushDecompress::Sync,
                    )
                    .map_err(|err| CodecError::Corrupt(err.to_string()));
                let status = match status {
                    Ok(status) => status,
                    Err(err) => return Err(self.fail(err)),
                };
                consumed += progress(in_before, self.decompress.total_in());
                if out.len() > limit {
                    return Err(self.fail(CodecError::TooLarge { limit }));
                }
                if status == Status::StreamEnd {
                    // The sender ended the stream (BFINAL): what follows is not part of it,
                    // and the next message starts afresh.
                    self.decompress.reset(false);
                    break 'message;
                }
                let stuck = consumed == 0 && out.len() == out_before && !input.is_empty();
                if (consumed >= input.len() || stuck) && out.len() < out.capacity() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Forgets the window after a failure (the next message starts afresh) and passes the
    /// error on.
    fn fail(&mut self, err: CodecError) -> CodecError {
        self.decompress.reset(false);
        err
    }
}

thread_local! {
    static DEFLATER: RefCell<Option<Deflater>> = const { RefCell::new(None) };
    static INFLATER: RefCell<Option<Inflater>> = const { RefCell::new(None) };
}

/// `message` compressed on its own (no context takeover) by this thread's [`Deflater`], made
/// on first use and kept for the thread's life (so a process holds one per thread, however
/// many connections it has).
///
/// ```
/// let text = "study ".repeat(50);
/// let wire = cerebrum_deflate::compress_on_this_thread(1, 15, text.as_bytes())?;
/// assert!(wire.len() < text.len());
/// assert_eq!(cerebrum_deflate::inflate_on_this_thread(&wire, 1024)?, text.as_bytes());
/// # Ok::<(), cerebrum_deflate::CodecError>(())
/// ```
///
/// # Errors
/// [`CodecError::BadSettings`] for a level or window out of range.
pub fn compress_on_this_thread(
    level: u32,
    window_bits: u8,
    message: &[u8],
) -> Result<Vec<u8>, CodecError> {
    DEFLATER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let deflater = match slot.as_mut() {
            Some(d) if d.level() == level && d.window_bits() == window_bits => d,
            _ => slot.insert(Deflater::new(level, window_bits)?),
        };
        deflater.compress(message)
    })
}

/// A message compressed on its own (its sender agreed to no context takeover) inflated by this
/// thread's [`Inflater`], if it is at most `limit` bytes.
///
/// # Errors
/// As [`Inflater::inflate`].
pub fn inflate_on_this_thread(compressed: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    INFLATER.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| Inflater::new(false))
            .inflate(compressed, limit)
    })
}
