//! `@when`: what a Python behavior carries ([`PyBody`]), how it is
//! scheduled, and which cowns the running behavior holds (for `.value`).

use crate::cown::{CownCore, PyCown};
use crate::runtime::{self, PINNED};
use boc::engine::{CownHeader, Payload};
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFunction, PyList, PyTuple};
use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::sync::Arc;

thread_local! {
    /// The distinct cowns (sorted by key) of the behavior running on this
    /// thread, while its body runs.
    static CURRENT: Cell<Option<*const [Arc<CownCore>]>> = const { Cell::new(None) };
    /// Set by `pump` around each main-side behavior.
    static MAIN_CONTEXT: RefCell<Option<MainState>> = const { RefCell::new(None) };
}

/// True while a behavior's body runs on this thread.
pub(crate) fn in_behavior() -> bool {
    CURRENT.with(Cell::get).is_some()
}

/// True if the behavior running on this thread holds `core`.
pub(crate) fn holds(core: &CownCore) -> bool {
    let Some(cowns) = CURRENT.with(Cell::get) else { return false };
    // SAFETY: set by `Current::enter` to the running payload's cowns, which
    // outlive the body; cleared when the body returns.
    let cowns = unsafe { &*cowns };
    cowns.binary_search_by_key(&core.key(), |cown| cown.key()).is_ok_and(|idx| std::ptr::eq(&*cowns[idx], core))
}

/// Marks a behavior's cowns as held by this thread while its body runs.
struct Current(Option<*const [Arc<CownCore>]>);

impl Current {
    /// Also starts the behavior's noticeboard reads afresh: its first read
    /// takes the snapshot the rest of it sees.
    fn enter(cowns: &[Arc<CownCore>]) -> Self {
        crate::noticeboard::forget_behavior_snapshot();
        Self(CURRENT.with(|current| current.replace(Some(std::ptr::from_ref(cowns)))))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.0));
        crate::noticeboard::forget_behavior_snapshot();
    }
}

/// What a main-side behavior tells the pump running it.
struct MainState {
    raise_on_error: bool,
    /// An exception to raise from pump once the behavior is released.
    stop: Option<PyErr>,
}

/// Marks the main thread as running a main-side behavior for `pump`.
pub(crate) struct MainContext(());

impl MainContext {
    pub(crate) fn enter(raise_on_error: bool) -> Self {
        MAIN_CONTEXT.with(|context| *context.borrow_mut() = Some(MainState { raise_on_error, stop: None }));
        Self(())
    }

    /// The exception the behavior wants pump to raise.
    pub(crate) fn take_stop(&self) -> Option<PyErr> {
        MAIN_CONTEXT.with(|context| context.borrow_mut().as_mut().and_then(|state| state.stop.take()))
    }
}

impl Drop for MainContext {
    fn drop(&mut self) {
        MAIN_CONTEXT.with(|context| *context.borrow_mut() = None);
    }
}

/// What a released behavior still owns: Python objects (the body and its
/// arguments if it never ran, the cowns and their values). The release
/// itself must not drop a Python object (SPEC §5 rule 2), so
/// `Payload::released` hands these over ([`defer`]) and the runner drops
/// them once the release has returned: attached, and before the engine
/// counts the behavior out (the runner's scope sits inside the engine's
/// count-out scope, see [`deferring`]), so whatever the drops leave behind
/// (a pinned value sent home, an exception to report) is there when a
/// waiter sees quiescence. They are only ever dropped.
#[allow(dead_code)] // Held for their drops.
pub(crate) struct Leftovers {
    objects: [Option<Py<PyAny>>; 2],
    cowns: CownList,
}

thread_local! {
    /// Leftovers of releases run by this thread's runner, waiting for it.
    static LEFTOVERS: RefCell<Vec<Leftovers>> = const { RefCell::new(Vec::new()) };
    /// Runners (`run_and_release`, `discard`) active on this thread: while
    /// non-zero, releases defer their leftovers to them.
    static DEFERRING: Cell<usize> = const { Cell::new(0) };
}

/// Hands `leftovers` to this thread's runner, or drops them now if the
/// release is not a runner's (a behavior dropped unrun by a queue).
fn defer(leftovers: Leftovers) {
    if DEFERRING.with(Cell::get) > 0 {
        LEFTOVERS.with_borrow_mut(|deferred| deferred.push(leftovers));
    } else {
        drop(leftovers);
    }
}

/// A runner's scope: releases inside it defer their leftovers, which its
/// drop drops (attached) once the release is over.
struct Deferring<'py> {
    py: Python<'py>,
}

impl<'py> Deferring<'py> {
    fn enter(py: Python<'py>) -> Self {
        DEFERRING.with(|deferring| deferring.set(deferring.get() + 1));
        Self { py }
    }
}

impl Drop for Deferring<'_> {
    fn drop(&mut self) {
        DEFERRING.with(|deferring| deferring.set(deferring.get() - 1));
        // One at a time: a drop may run `__del__`, which may schedule.
        while let Some(leftovers) = LEFTOVERS.with_borrow_mut(Vec::pop) {
            drop(leftovers);
        }
        runtime::drain_graveyard(self.py, crate::thread::is_main_thread());
    }
}

/// Runs a ready behavior on this thread, attached, and releases it as soon
/// as its body returns (SPEC §5 rule 1); returns whether the body failed.
/// The release runs attached too (rule 2: it calls no Python and only spins
/// on other threads' protocol steps, which need no attachment); what the
/// behavior leaves is dropped right after, then it is counted out.
pub(crate) fn run_and_release(py: Python<'_>, behavior: boc::engine::Ready) -> bool {
    deferring(py, || behavior.run())
}

/// Runs `f`, which releases behaviors (runs them, or drops them unrun: a
/// result cown of one that never ran stays lost), then drops what they
/// leave and, after that, counts them out (the engine's count-out scope is
/// the outer one). Attached.
pub(crate) fn deferring<R>(py: Python<'_>, f: impl FnOnce() -> R) -> R {
    boc::engine::deferring_count_out(|| {
        let _deferring = Deferring::enter(py);
        f()
    })
}

/// A scheduled Python behavior.
pub(crate) struct PyBody {
    /// The function and the arguments as given to `when` (lists copied);
    /// taken when the body runs.
    call: Option<(Py<PyAny>, Py<PyTuple>)>,
    /// The distinct cowns of the request set, sorted by key, result cown
    /// (the newest) last; kept (by `Arc`) until the behavior is released.
    cowns: CownList,
    label: Option<Arc<str>>,
    failed: bool,
}

impl PyBody {
    fn run_attached(&mut self, py: Python<'_>) {
        let Some((function, args)) = self.call.take() else { return };
        let result = self.cowns.result();
        result.mark_started();
        let outcome = {
            let _current = Current::enter(self.cowns.as_slice());
            function.bind(py).call1(args.bind(py))
        };
        drop(args);
        // Everything that calls Python comes before the slot is borrowed
        // (`CownCore`'s docs).
        let old = match outcome {
            // `None` is stored as no object: most behaviors return it, and a
            // result cown then owns no reference to drop.
            Ok(value) => {
                let value = (!value.is_none()).then(|| value.unbind());
                if let Some(value) = &value {
                    crate::cown::track_if_cyclic(result, value);
                }
                // SAFETY: the behavior holds its result cown (it is in the
                // request set) until it is released, after this; attached;
                // no Python runs while the slot is borrowed.
                std::mem::replace(&mut unsafe { result.slot_mut() }.value, value)
            }
            Err(error) => {
                self.failed = true;
                let is_base = !error.is_instance_of::<PyException>(py);
                let exception = error.clone_ref(py).into_value(py).into_any();
                let origin = self.label.clone().unwrap_or_else(|| describe_function(function.bind(py)).into());
                // Re-raised by the pump running it (so not "never retrieved").
                let raised = MAIN_CONTEXT
                    .with_borrow(|context| context.as_ref().is_some_and(|state| is_base || state.raise_on_error));
                crate::cown::track_if_cyclic(result, &exception);
                let old = {
                    // SAFETY: as above.
                    let slot = unsafe { result.slot_mut() };
                    slot.is_exception = true;
                    slot.retrieved = raised;
                    slot.origin = Some(origin);
                    slot.value.replace(exception)
                };
                crate::report::note_failed(result);
                if raised {
                    MAIN_CONTEXT.with_borrow_mut(|context| {
                        if let Some(state) = context.as_mut() {
                            state.stop = Some(error);
                        }
                    });
                }
                old
            }
        };
        drop((old, function));
    }
}

impl Payload for PyBody {
    fn run(&mut self) {
        // SAFETY: a behavior runs only through `run_and_release`, whose
        // callers are attached with PyO3 knowing it: a worker's loop runs
        // inside `Python::attach` (`worker::Workers`), a main-side behavior
        // inside `pump`, `wait` or `stop`, all calls from Python.
        self.run_attached(unsafe { Python::assume_attached() });
    }

    fn released(&mut self) {
        let [function, args] = match self.call.take() {
            Some((function, args)) => [Some(function), Some(args.into_any())],
            None => [None, None],
        };
        let cowns = std::mem::replace(&mut self.cowns, CownList::EMPTY);
        defer(Leftovers { objects: [function, args], cowns });
    }

    fn failed(&self) -> bool {
        self.failed
    }

    fn label(&self) -> Option<Arc<str>> {
        self.label.clone()
    }
}

/// A main-side behavior with no cowns that drops a pinned value on the
/// main thread: a pinned cown whose last handle died elsewhere sends its
/// value home this way, counted and signalled like any main-side work.
pub(crate) struct PinnedDrop {
    value: Option<Py<PyAny>>,
}

impl PinnedDrop {
    pub(crate) fn new(value: Py<PyAny>) -> Self {
        Self { value: Some(value) }
    }
}

impl Payload for PinnedDrop {
    fn run(&mut self) {
        // Main-side, so run on the main thread, attached (see
        // `PyBody::run`): the value is dropped right here.
        self.value = None;
    }

    fn released(&mut self) {
        // If it never ran (discarded at exit), the value is dropped with the
        // leftovers, by the main thread that discarded it.
        defer(Leftovers { objects: [self.value.take(), None], cowns: CownList::EMPTY });
    }

    fn label(&self) -> Option<Arc<str>> {
        Some(Arc::from("drop of a PinnedCown's value"))
    }
}

/// `qualname (file:line)` of a behavior's function, for diagnostics.
pub(crate) fn describe_function(function: &Bound<'_, PyAny>) -> String {
    let name = function
        .getattr("__qualname__")
        .or_else(|_| function.getattr("__name__"))
        .map_or_else(|_| function.to_string(), |name| name.to_string());
    let location = function.getattr("__code__").ok().and_then(|code| {
        let file = code.getattr("co_filename").ok()?;
        let line = code.getattr("co_firstlineno").ok()?;
        Some(format!("{file}:{line}"))
    });
    match location {
        Some(location) => format!("{name} ({location})"),
        None => name,
    }
}

/// What `@when` learns about a function from its code object: whether
/// calling it runs its body at all (a coroutine or generator function only
/// creates an object: refused), and its name for the watchdog. Each costs
/// attribute lookups, and programs schedule the same few functions over and
/// over, so every thread keeps the facts of the last [`MAX_CODE_FACTS`] code
/// objects it saw. An entry holds its code object, so the address it is
/// found by cannot be reused by another while cached.
///
/// Functions made by one `def` (closures, decorated copies) share a code
/// object but each has its own `__qualname__`: the label is kept with the
/// name object it was made from and made again when a function's name is
/// another object.
struct CodeFacts {
    code: Py<PyAny>,
    /// `Some((kind, what a call creates))` for a function whose call does
    /// not run its body.
    never_runs: Option<(&'static str, &'static str)>,
    /// The last label made, with the `__qualname__` object it names (held,
    /// so its address is not reused while cached).
    label: Option<(Py<PyAny>, Arc<str>)>,
}

const MAX_CODE_FACTS: usize = 8;

/// Code flags (stable since CPython 3.6) of functions whose call creates an
/// object instead of running the body, most specific first.
const NEVER_RUNS: [(u32, &str, &str); 3] = [
    (0x200, "async generator function", "an async generator"), // CO_ASYNC_GENERATOR
    (0x80, "async function", "a coroutine"),                   // CO_COROUTINE
    (0x20, "generator function", "a generator"),               // CO_GENERATOR
];

thread_local! {
    /// Never dropped: a thread's destructors run once it has left Python,
    /// and a Python reference dropped there goes to PyO3's list of
    /// deferred decrefs, whose lock a fork may then leave held in the child
    /// (every call into the extension takes it: see `fork`). A worker
    /// empties its cache before it leaves Python ([`clear_code_facts`]);
    /// another thread that ends leaves its at most [`MAX_CODE_FACTS`]
    /// references (to code objects and names) alive.
    static CODE_FACTS: ManuallyDrop<RefCell<Vec<CodeFacts>>> = const { ManuallyDrop::new(RefCell::new(Vec::new())) };
}

/// Empties this thread's cache of code facts (attached, so the references
/// are dropped at once).
pub(crate) fn clear_code_facts(_py: Python<'_>) {
    CODE_FACTS.with(|facts| facts.borrow_mut().clear());
}

/// Runs `f` on the facts of `function`'s code, or returns `None` if it is
/// not a plain Python function.
fn with_code_facts<R>(function: &Bound<'_, PyAny>, f: impl FnOnce(&mut CodeFacts) -> R) -> Option<R> {
    if !function.is_instance_of::<PyFunction>() {
        return None;
    }
    let py = function.py();
    let code = code_of(function)?;
    CODE_FACTS.with(|facts| {
        let mut facts = facts.borrow_mut();
        if let Some(idx) = facts.iter().position(|entry| entry.code.as_ptr() == code.as_ptr()) {
            return Some(f(&mut facts[idx]));
        }
        let flags = code.getattr(intern!(py, "co_flags")).and_then(|flags| flags.extract::<u32>()).unwrap_or(0);
        let never_runs =
            NEVER_RUNS.iter().find(|(flag, _, _)| flags & flag != 0).map(|&(_, kind, creates)| (kind, creates));
        if facts.len() == MAX_CODE_FACTS {
            facts.pop();
        }
        facts.insert(0, CodeFacts { code: code.unbind(), never_runs, label: None });
        Some(f(&mut facts[0]))
    })
}

/// A function's code object, as a strong reference taken at once. On a
/// free-threaded build another thread may assign `function.__code__`
/// meanwhile, freeing the old code object, so the reference comes from the
/// attribute (which counts it under the function's lock); with the GIL,
/// `PyFunction_GetCode`'s borrowed pointer is counted before anything else
/// can run.
fn code_of<'py>(function: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    let py = function.py();
    if !crate::thread::gil_enabled() {
        return function.getattr(intern!(py, "__code__")).ok();
    }
    // SAFETY: `function` is a function object (checked by the caller);
    // attached with the GIL held, so no other thread runs between the
    // borrow and the new reference.
    Some(unsafe { Bound::from_borrowed_ptr(py, pyo3::ffi::PyFunction_GetCode(function.as_ptr())) })
}

/// For a coroutine or generator function, whose call never runs its body:
/// what kind it is and what a call creates.
fn never_runs(function: &Bound<'_, PyAny>) -> Option<(&'static str, &'static str)> {
    with_code_facts(function, |facts| facts.never_runs).flatten()
}

/// The watchdog's name for a behavior running `function`.
fn label_of(function: &Bound<'_, PyAny>) -> Arc<str> {
    let Ok(name) = function.getattr(intern!(function.py(), "__qualname__")) else {
        return describe_function(function).into();
    };
    with_code_facts(function, |facts| match &facts.label {
        Some((named, label)) if named.as_ptr() == name.as_ptr() => Arc::clone(label),
        _ => {
            let label: Arc<str> = describe_function(function).into();
            facts.label = Some((name.clone().unbind(), Arc::clone(&label)));
            label
        }
    })
    .unwrap_or_else(|| describe_function(function).into())
}

/// The decorator `when(*cowns)` returns: validated arguments, waiting for
/// the function.
#[pyclass(name = "when", module = "boc", frozen)]
pub(crate) struct When {
    /// Dropped in an attach window, as the cowns (`exit::DropsPython`).
    args: crate::exit::DropsPython<Py<PyTuple>>,
    /// Every cown named, lists flattened, with duplicates.
    cowns: crate::exit::DropsPython<Vec<Arc<CownCore>>>,
    pinned: bool,
}

/// Schedule the decorated function as a behavior on `cowns`:
///
///     @when(src, dst)
///     def transfer(src, dst):
///         src.value -= 10
///         dst.value += 10
///
/// Each argument is a `Cown` or a list of cowns (the body receives the
/// list). The function runs once it holds every cown named, exclusively;
/// behaviors sharing a cown run in the order they were scheduled. The name
/// is bound to the result cown: the return value, or the exception raised
/// (`.exception` true, `.unwrap()` re-raises). Any `PinnedCown` in the set
/// makes it run on the main thread. Usable from any thread and from inside
/// behaviors; bad arguments raise `TypeError` at once.
#[pyfunction(name = "when", signature = (*cowns))]
pub(crate) fn when(cowns: &Bound<'_, PyTuple>) -> PyResult<When> {
    let py = cowns.py();
    crate::exit::call(py, || {
        let mut flat = Vec::with_capacity(cowns.len());
        let mut args = Vec::with_capacity(cowns.len());
        for (arg_idx, arg) in cowns.iter().enumerate() {
            if let Ok(cown) = arg.cast::<PyCown>() {
                crate::cown::untrack_if_acyclic(cown);
                flat.push(Arc::clone(&cown.get().core));
                args.push(arg);
            } else if let Ok(list) = arg.cast::<PyList>() {
                let items = list.iter().collect::<Vec<_>>();
                for (item_idx, item) in items.iter().enumerate() {
                    let Ok(cown) = item.cast::<PyCown>() else {
                        return Err(PyTypeError::new_err(format!(
                            "when() takes cowns or lists of cowns; item {item_idx} of the list in argument {} is {}, not \
                             a Cown. Wrap shared values in boc.Cown(...).",
                            arg_idx + 1,
                            describe_arg(item)
                        )));
                    };
                    flat.push(Arc::clone(&cown.get().core));
                }
                // A copy: the body gets the list as it was when scheduled.
                args.push(PyList::new(py, items)?.into_any());
            } else {
                return Err(PyTypeError::new_err(format!(
                    "when() takes cowns or lists of cowns; argument {} is {}. Wrap shared values in boc.Cown(...){}.",
                    arg_idx + 1,
                    describe_arg(&arg),
                    if arg.is_instance_of::<PyTuple>() {
                        ", and pass several cowns as a list, not a tuple"
                    } else {
                        ""
                    }
                )));
            }
        }
        let pinned = flat.iter().any(|core| core.pinned);
        // Without lists the arguments are the call's own tuple: no new one.
        let has_lists = args.iter().zip(cowns.iter()).any(|(arg, given)| !arg.is(&given));
        let args = if has_lists { PyTuple::new(py, args)?.unbind() } else { cowns.clone().unbind() };
        Ok(When { args: crate::exit::DropsPython::new(args), cowns: crate::exit::DropsPython::new(flat), pinned })
    })
}

fn describe_arg(arg: &Bound<'_, PyAny>) -> String {
    if arg.is_callable() && arg.hasattr("__code__").unwrap_or(false) {
        return format!("the function {} (use @when(...) with parentheses, naming the cowns)", describe_function(arg));
    }
    let name = crate::args::type_name(arg);
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {name} ({})", arg.repr().map_or_else(|_| "?".to_owned(), |r| r.to_string()))
}

impl When {
    fn schedule(&self, py: Python<'_>, function: &Bound<'_, PyAny>) -> PyResult<Py<PyCown>> {
        if !function.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "@when(...) decorates a function, not {}",
                describe_arg(function)
            )));
        }
        if let Some((kind, creates)) = never_runs(function) {
            return Err(PyTypeError::new_err(format!(
                "@when(...) cannot schedule the {kind} {}: calling it would only create {creates}, and its body would \
                 never run. Make the behavior a plain def.",
                describe_function(function)
            )));
        }
        crate::exit::gate_schedule(py, "when")?;
        // Every fallible step comes before the behavior is counted in: a
        // failure after it would leave `wait()` waiting for it forever.
        let result = CownCore::new_result();
        let result_object = Bound::new(py, PyCown::from_core(Arc::clone(&result)))?;
        crate::cown::untrack_if_acyclic(&result_object);
        let (runtime, ticket) = runtime::enter()?;
        let label = (ticket.epoch().runs_at_home(self.pinned) && runtime.labels_wanted()).then(|| label_of(function));
        let headers = Headers { named: self.cowns.iter(), result: Some(&result.header) };
        let payload = PyBody {
            call: Some((function.clone().unbind(), self.args.clone_ref(py))),
            cowns: CownList::new(&self.cowns, Arc::clone(&result)),
            label,
            failed: false,
        };
        let flags = if self.pinned { PINNED } else { 0 };
        // Two-phase locking runs attached: it calls no Python and only spins
        // on other threads' protocol steps, which need no attachment (SPEC
        // §5 rule 2; the argument is in docs/python.md).
        // SAFETY: the payload owns (by `Arc`) every cown named until it is
        // released; the headers are borrowed from `self` and `result`,
        // alive for this call. The engine dispatches through the ticket's
        // epoch, which the behavior keeps alive itself.
        unsafe { runtime.engine.schedule(ticket, headers, payload, flags) };
        Ok(result_object.unbind())
    }
}

#[pymethods]
impl When {
    /// Schedules `function` and returns the cown its result will land in.
    fn __call__(&self, py: Python<'_>, function: &Bound<'_, PyAny>) -> PyResult<Py<PyCown>> {
        crate::exit::call(py, || self.schedule(py, function))
    }

    fn __repr__(&self) -> String {
        format!("<boc.when decorator over {} cowns>", self.cowns.len())
    }
}

/// The distinct cowns of a behavior, sorted by key, result cown included;
/// empty after the release. One buffer per behavior, allocated by the
/// scheduling thread and freed by the releasing one: the cross-thread free
/// that mimalloc serves well (the allocation A/B in BENCHMARKS.md measured
/// inline lists for small request sets within noise of this).
struct CownList(Vec<Arc<CownCore>>);

impl CownList {
    /// After the release.
    const EMPTY: Self = Self(Vec::new());

    /// `named` (with duplicates, any order) plus `result`, which sorts last:
    /// it was created after every named cown, and keys grow with creation.
    fn new(named: &[Arc<CownCore>], result: Arc<CownCore>) -> Self {
        debug_assert!(named.iter().all(|cown| cown.key() < result.key()));
        let mut cowns = Vec::with_capacity(named.len() + 1);
        cowns.extend(named.iter().cloned());
        cowns.sort_unstable_by_key(|cown| cown.key());
        cowns.dedup_by(|a, b| Arc::ptr_eq(a, b));
        cowns.push(result);
        Self(cowns)
    }

    /// The result cown: the newest, so the last.
    fn result(&self) -> &Arc<CownCore> {
        self.as_slice().last().expect("a behavior's cowns include its result cown until it is released")
    }

    fn as_slice(&self) -> &[Arc<CownCore>] {
        &self.0
    }
}

/// The protocol headers of a request set: the cowns named, with
/// duplicates (the core removes them), then the result cown.
struct Headers<'a> {
    named: std::slice::Iter<'a, Arc<CownCore>>,
    result: Option<&'a CownHeader>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = &'a CownHeader;

    fn next(&mut self) -> Option<&'a CownHeader> {
        self.named.next().map(|cown| &cown.header).or_else(|| self.result.take())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.named.len() + usize::from(self.result.is_some());
        (len, Some(len))
    }
}

impl ExactSizeIterator for Headers<'_> {}
