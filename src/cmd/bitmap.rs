//! Bitmaps: (pending).
