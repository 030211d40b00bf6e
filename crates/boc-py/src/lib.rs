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
fn _boc(module: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::thread::init(module.py())?;
    fork::install();
    module.add_class::<cown::PyCown>()?;
    module.add_class::<cown::PyPinnedCown>()?;
    report::install_finalizer(module.py());
    module.add_function(wrap_pyfunction!(behavior::when, module)?)?;
    module.add_function(wrap_pyfunction!(crate::lifecycle::start, module)?)?;
    module.add_function(wrap_pyfunction!(crate::lifecycle::wait, module)?)?;
    module.add_function(wrap_pyfunction!(crate::lifecycle::quiesce, module)?)?;
    module.add_function(wrap_pyfunction!(crate::lifecycle::stop, module)?)?;
    module.add_function(wrap_pyfunction!(crate::pump::pump, module)?)?;
    module.add_function(wrap_pyfunction!(crate::host::pump_fd, module)?)?;
    module.add_function(wrap_pyfunction!(crate::host::set_pump_waker, module)?)?;
    module.add_function(wrap_pyfunction!(crate::host::set_pump_watchdog, module)?)?;
    module.add_function(wrap_pyfunction!(crate::lifecycle::_state, module)?)?;
    messages::init(module)?;
    module.add_function(wrap_pyfunction!(messages::send, module)?)?;
    module.add_function(wrap_pyfunction!(messages::receive, module)?)?;
    module.add_function(wrap_pyfunction!(messages::drain, module)?)?;
    noticeboard::init(module)?;
    module.add_function(wrap_pyfunction!(noticeboard::notice_write, module)?)?;
    module.add_function(wrap_pyfunction!(noticeboard::notice_update, module)?)?;
    module.add_function(wrap_pyfunction!(noticeboard::notice_delete, module)?)?;
    module.add_function(wrap_pyfunction!(noticeboard::notice_read, module)?)?;
    module.add_function(wrap_pyfunction!(noticeboard::_noticeboard, module)?)?;
    module.add_function(wrap_pyfunction!(fork::_after_fork_in_child, module)?)?;
    module.add_function(wrap_pyfunction!(exit::_shutdown_at_exit, module)?)?;
    Ok(())
}
