//! A few pieces of work run at once: the first on the calling thread, each
//! other on a scoped thread of its own, for work large enough that a thread
//! pays for itself (a text sink's parts, the files of one write).
//!
//! ```
//! let squares = sluice_core::at_once::map_at_once(&[1, 2, 3], |n| n * n);
//! let squares: Vec<i32> = squares.into_iter().map(|r| r.unwrap()).collect();
//! assert_eq!(squares, [1, 4, 9]);
//! ```

/// `f` of each of `items`, in their order, each run on a thread of its own
/// but the first; a panicked run is its `Err` (the panic's payload).
pub fn map_at_once<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<std::thread::Result<R>> {
    let Some((first, others)) = items.split_first() else {
        return Vec::new();
    };
    let f = &f;
    std::thread::scope(|scope| {
        let others: Vec<_> = others
            .iter()
            .map(|item| scope.spawn(move || f(item)))
            .collect();
        let mut results = vec![Ok(f(first))];
        results.extend(others.into_iter().map(|other| other.join()));
        results
    })
}
