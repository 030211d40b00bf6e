//! Helpers shared by the integration tests.

use boc_pin::MainQueue;

/// Pushes onto its queue when dropped: code that must not run under the
/// queue's lock.
pub(crate) struct PushOnDrop(pub(crate) std::sync::Weak<MainQueue<u32>>);

impl Drop for PushOnDrop {
    fn drop(&mut self) {
        if let Some(queue) = self.0.upgrade() {
            queue.push(99, None);
        }
    }
}
