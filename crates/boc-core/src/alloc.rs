//! Behavior blocks: allocated by the scheduling thread, freed by whichever
//! thread releases the behavior, usually another one.
//!
//! That pattern is the worst case for a general-purpose allocator: glibc's
//! malloc, for one, returns a chunk freed on another thread to the owning
//! arena under the arena's lock, and the scheduling thread contends for the
//! same lock on its next allocation. Profiles of a million behaviors showed
//! a third of the time in those locks and the futex calls behind them.
//!
//! So blocks up to [`MAX_RECYCLED`] bytes are recycled, magazine style:
//! rounded up to a size class, freed blocks collect in a per-thread batch;
//! a full batch of [`BATCH`] goes onto that class's bounded lock-free queue
//! of batches (a `crossbeam_queue::ArrayQueue`, whose push and pop
//! synchronize like a Release store and an Acquire load, so a block's
//! previous life happens before its next), and a thread that runs out of
//! blocks takes a whole batch. The shared queue is touched once per
//! [`BATCH`] blocks, not once per block. A thread reuses its own frees
//! first. At most [`CAPACITY`] batches per class are kept; beyond that, and
//! when a thread exits, blocks go back to the allocator.
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
/// Blocks moved between threads at a time.
const BATCH: usize = 32;
/// Full batches kept per size class.
#[cfg(not(boc_loom))]
const CAPACITY: usize = 64;

/// A free block; only its address travels between threads.
struct FreeBlock(NonNull<u8>);

// SAFETY: a free block is owned by whoever holds this handle; nothing else
// refers to it, so it may move between threads.
unsafe impl Send for FreeBlock {}

#[cfg(not(boc_loom))]
type Batch = Vec<FreeBlock>;

#[cfg(not(boc_loom))]
fn shared_batches() -> &'static [crossbeam_queue::ArrayQueue<Batch>; N_CLASSES] {
    static BATCHES: std::sync::LazyLock<[crossbeam_queue::ArrayQueue<Batch>; N_CLASSES]> =
        std::sync::LazyLock::new(|| std::array::from_fn(|_| crossbeam_queue::ArrayQueue::new(CAPACITY)));
    &BATCHES
}

/// One thread's free blocks of one class.
#[cfg(not(boc_loom))]
#[derive(Default)]
struct Local {
    /// Blocks this thread freed, handed to others as a batch when full.
    freed: Batch,
    /// A batch taken from the shared queue, being allocated from.
    taken: Batch,
}

/// A thread's free blocks, per class; returned to the allocator when the
/// thread exits.
#[cfg(not(boc_loom))]
struct Cache([Local; N_CLASSES]);

#[cfg(not(boc_loom))]
impl Drop for Cache {
    fn drop(&mut self) {
        for (class, local) in self.0.iter_mut().enumerate() {
            for FreeBlock(block) in local.freed.drain(..).chain(local.taken.drain(..)) {
                // SAFETY: a free block of this class, owned by this cache.
                unsafe { alloc::dealloc(block.as_ptr(), class_layout(class)) };
            }
        }
    }
}

#[cfg(not(boc_loom))]
thread_local! {
    static CACHE: std::cell::RefCell<Cache> = std::cell::RefCell::new(Cache(Default::default()));
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

/// A recycled block of `class`, if this thread or the shared queue has one.
#[cfg(not(boc_loom))]
fn reuse(class: usize) -> Option<NonNull<u8>> {
    // `try_with`: during thread teardown the cache may be gone already.
    CACHE
        .try_with(|cache| {
            let local = &mut cache.borrow_mut().0[class];
            if let Some(FreeBlock(block)) = local.freed.pop().or_else(|| local.taken.pop()) {
                return Some(block);
            }
            local.taken = shared_batches()[class].pop()?;
            local.taken.pop().map(|FreeBlock(block)| block)
        })
        .ok()
        .flatten()
}

/// Keeps a freed block of `class` for reuse; false if it must go back to
/// the allocator.
#[cfg(not(boc_loom))]
fn keep(class: usize, block: NonNull<u8>) -> bool {
    CACHE
        .try_with(|cache| {
            let local = &mut cache.borrow_mut().0[class];
            local.freed.push(FreeBlock(block));
            if local.freed.len() >= BATCH {
                let full = std::mem::replace(&mut local.freed, Vec::with_capacity(BATCH));
                if let Err(full) = shared_batches()[class].push(full) {
                    for FreeBlock(block) in full {
                        // SAFETY: free blocks of this class, owned here.
                        unsafe { alloc::dealloc(block.as_ptr(), class_layout(class)) };
                    }
                }
            }
        })
        .is_ok()
}

/// Allocates a block for `layout` (non-zero size).
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    let layout = match class_of(layout) {
        Some(class) => {
            #[cfg(not(boc_loom))]
            if let Some(block) = reuse(class) {
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
            if keep(class, block) {
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
    fn batches_of_blocks_move_between_threads() {
        let layout = Layout::from_size_align(200, 8).unwrap();
        let n = if cfg!(miri) { 2 * BATCH } else { 10 * BATCH };
        // Allocated here, freed on another thread (as behaviors usually
        // are): full batches reach the shared queue.
        let blocks: Vec<FreeBlock> = (0..n).map(|_| FreeBlock(allocate(layout))).collect();
        std::thread::spawn(move || {
            for FreeBlock(block) in blocks {
                // SAFETY: from `allocate(layout)`, handed over whole.
                unsafe { deallocate(block, layout) };
            }
        })
        .join()
        .unwrap();
        // This thread takes batches back and can write every block.
        let reused: Vec<NonNull<u8>> = (0..n).map(|_| allocate(layout)).collect();
        for block in reused {
            // SAFETY: a block of at least 200 bytes, exclusively ours.
            unsafe { block.as_ptr().write_bytes(0x5A, 200) };
            // SAFETY: from `allocate(layout)`, no longer used.
            unsafe { deallocate(block, layout) };
        }
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
