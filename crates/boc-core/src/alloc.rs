//! Behavior blocks: allocated by the scheduling thread, freed by whichever
//! thread releases the behavior, usually another one.
//!
//! That pattern is the worst case for a general-purpose allocator: glibc's
//! malloc, for one, returns a chunk freed on another thread to the owning
//! arena under the arena's lock, and the scheduling thread contends for the
//! same lock on its next allocation. Profiles of a million behaviors showed
//! a third of the time in those locks and the futex calls behind them.
//!
//! So blocks up to [`MAX_RECYCLED`] bytes are recycled: rounded up to a size
//! class, and on release pushed onto that class's bounded lock-free queue
//! (a `crossbeam_queue::ArrayQueue`, whose push and pop synchronize like a
//! Release store and an Acquire load, so the block's previous life happens
//! before its next). A full queue frees to the allocator; an empty one
//! allocates. At most [`CAPACITY`] blocks per class are kept.
//!
//! Under loom the recycler is off (plain allocation): it is not part of the
//! protocol, and its queue is not modelled.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Size classes are multiples of this, which is also every class's
/// alignment (a cache line, so no two blocks share one).
const CLASS_STEP: usize = 64;
/// Number of size classes.
const N_CLASSES: usize = 8;
/// The largest block that is recycled.
pub(crate) const MAX_RECYCLED: usize = CLASS_STEP * N_CLASSES;
/// Blocks kept per size class.
const CAPACITY: usize = 1024;

/// A free block; only its address travels through the queue.
struct FreeBlock(NonNull<u8>);

// SAFETY: a free block is owned by whoever holds this handle; nothing else
// refers to it, so it may move between threads.
unsafe impl Send for FreeBlock {}

#[cfg(not(boc_loom))]
fn free_lists() -> &'static [crossbeam_queue::ArrayQueue<FreeBlock>; N_CLASSES] {
    static FREE_LISTS: std::sync::LazyLock<[crossbeam_queue::ArrayQueue<FreeBlock>; N_CLASSES]> =
        std::sync::LazyLock::new(|| std::array::from_fn(|_| crossbeam_queue::ArrayQueue::new(CAPACITY)));
    &FREE_LISTS
}

/// The size class of `layout`, if it is recycled.
fn class_of(layout: Layout) -> Option<usize> {
    if cfg!(boc_loom) || layout.size() > MAX_RECYCLED || layout.align() > CLASS_STEP {
        return None;
    }
    Some(layout.size().div_ceil(CLASS_STEP).max(1) - 1)
}

fn class_layout(class: usize) -> Layout {
    Layout::from_size_align((class + 1) * CLASS_STEP, CLASS_STEP).expect("size classes are valid layouts")
}

/// Allocates a block for `layout` (non-zero size).
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    let layout = match class_of(layout) {
        Some(class) => {
            #[cfg(not(boc_loom))]
            if let Some(FreeBlock(block)) = free_lists()[class].pop() {
                return block;
            }
            class_layout(class)
        }
        None => layout,
    };
    // SAFETY: every layout here has a non-zero size (the caller's, or a
    // size class).
    let raw = unsafe { alloc::alloc(layout) };
    NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Frees a block from [`allocate`].
///
/// # Safety
///
/// `block` came from `allocate(layout)` with the same `layout`, and nothing
/// refers to it any more.
pub(crate) unsafe fn deallocate(block: NonNull<u8>, layout: Layout) {
    let layout = match class_of(layout) {
        Some(class) => {
            #[cfg(not(boc_loom))]
            if free_lists()[class].push(FreeBlock(block)).is_ok() {
                return;
            }
            class_layout(class)
        }
        None => layout,
    };
    // SAFETY: allocated with this layout (the class's, for a class size),
    // per the caller's contract.
    unsafe { alloc::dealloc(block.as_ptr(), layout) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_and_large_blocks_bypass() {
        let layout = |size, align| Layout::from_size_align(size, align).unwrap();
        assert_eq!(class_of(layout(1, 8)), Some(0));
        assert_eq!(class_of(layout(64, 8)), Some(0));
        assert_eq!(class_of(layout(65, 8)), Some(1));
        assert_eq!(class_of(layout(MAX_RECYCLED, 16)), Some(N_CLASSES - 1));
        assert_eq!(class_of(layout(MAX_RECYCLED + 1, 8)), None);
        assert_eq!(class_of(layout(64, 128)), None);
    }

    #[test]
    fn a_freed_block_is_reused_and_writable() {
        let layout = Layout::from_size_align(100, 8).unwrap();
        let first = allocate(layout);
        // SAFETY: a fresh block of at least 100 bytes.
        unsafe { first.as_ptr().write_bytes(0xAB, 100) };
        // SAFETY: from `allocate(layout)`, no longer used.
        unsafe { deallocate(first, layout) };
        let second = allocate(layout);
        // SAFETY: a block of at least 100 bytes, exclusively ours.
        unsafe { second.as_ptr().write_bytes(0xCD, 100) };
        // SAFETY: as above.
        unsafe { deallocate(second, layout) };
    }
}
