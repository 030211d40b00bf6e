//! The `boc._boc` extension module: Python bindings of the boc runtime.
//!
//! Only `Py*` wrappers and their glue live here; the protocol, the pool and
//! the pump are the lower crates'. The Python package `boc`
//! (`python/boc/`) re-exports these names and adds the pure-Python parts.

mod args;
mod behavior;
mod cown;
mod errors;
mod exit;
mod fork;
mod host;
mod lifecycle;
mod messages;
mod noticeboard;
mod primitive;
mod pump;
mod report;
mod runtime;
mod thread;
mod worker;

use pyo3::prelude::*;

/// Rust allocations of the extension: made on the thread that schedules a
/// behavior, freed on the worker that releases it. glibc's malloc takes the
/// allocating arena's lock for such frees; mimalloc does not (chain of 20k
/// behaviors on 3.12, 1 worker: 41 -> 34 ms). Python objects still come
/// from CPython's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The extension module. Free-threading safe: no state relies on the GIL.
#[pymodule(gil_used = false)]
mod _boc {
    #[pymodule_export]
    use crate::behavior::when;
    #[pymodule_export]
    use crate::cown::{PyCown, PyPinnedCown};
    #[pymodule_export]
    use crate::exit::_shutdown_at_exit;
    #[pymodule_export]
    use crate::fork::_after_fork_in_child;
    #[pymodule_export]
    use crate::host::{pump_fd, set_pump_waker, set_pump_watchdog};
    #[pymodule_export]
    use crate::lifecycle::{_state, quiesce, start, stop, wait};
    #[pymodule_export]
    use crate::messages::{drain, receive, send};
    #[pymodule_export]
    use crate::noticeboard::{_noticeboard, notice_delete, notice_read, notice_update, notice_write};
    #[pymodule_export]
    use crate::pump::pump;
    use pyo3::prelude::*;

    /// Runs once the exports above are in the module, before `import`
    /// returns it: nothing is callable from Python until then.
    #[pymodule_init]
    fn init(module: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::thread::init(module.py())?;
        crate::fork::install();
        // After the classes exist (they were added above).
        crate::report::install_finalizer(module.py());
        crate::messages::init(module)?;
        crate::noticeboard::init(module)
    }
}
