//! A PostgreSQL write transaction's buffered writes: each key's last put or delete, by table,
//! kept in memory until the commit sends them all at once (one statement per table and kind,
//! pipelined) instead of one round trip per write. Reads inside the transaction see them:
//! a `get` answers from here first, a range merges them over what the database returns.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use super::kv::{Rows, Table};

/// Pending writes: `Some(value)` for a put, `None` for a delete.
#[derive(Default)]
pub(super) struct Overlay {
    tables: HashMap<Table, BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

/// What a commit sends for one table.
pub(super) struct Flush {
    pub table: Table,
    pub put_keys: Vec<Vec<u8>>,
    pub put_values: Vec<Vec<u8>>,
    pub deletes: Vec<Vec<u8>>,
}

impl Overlay {
    /// The pending write of a key: `Some(Some(v))` put, `Some(None)` deleted, `None` untouched.
    pub fn get(&self, t: Table, key: &[u8]) -> Option<Option<&Vec<u8>>> {
        self.tables.get(&t)?.get(key).map(Option::as_ref)
    }

    /// Records a put.
    pub fn put(&mut self, t: Table, key: &[u8], value: &[u8]) {
        self.tables
            .entry(t)
            .or_default()
            .insert(key.to_vec(), Some(value.to_vec()));
    }

    /// Records a delete.
    pub fn delete(&mut self, t: Table, key: &[u8]) {
        self.tables.entry(t).or_default().insert(key.to_vec(), None);
    }

    /// Nothing pending?
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeMap::is_empty)
    }

    /// Every key written, for the locks a commit takes.
    pub fn keys(&self) -> impl Iterator<Item = (Table, &Vec<u8>)> {
        self.tables
            .iter()
            .flat_map(|(t, m)| m.keys().map(move |k| (*t, k)))
    }

    /// How many deletes fall in the range: a range asks the database for that many more rows.
    pub fn deletes_in(&self, t: Table, from: &Bound<Vec<u8>>, to: &Bound<Vec<u8>>) -> usize {
        self.tables.get(&t).map_or(0, |m| {
            m.range::<Vec<u8>, _>((from.clone(), to.clone()))
                .filter(|(_, v)| v.is_none())
                .count()
        })
    }

    /// The database's rows of a range (`limit + deletes_in` of them, in the range's order)
    /// with the pending writes applied: the first `limit` in order.
    pub fn merge(
        &self,
        t: Table,
        from: &Bound<Vec<u8>>,
        to: &Bound<Vec<u8>>,
        rev: bool,
        limit: usize,
        db: Rows,
    ) -> Rows {
        let Some(m) = self.tables.get(&t) else {
            let mut db = db;
            db.truncate(limit);
            return db;
        };
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = db.into_iter().collect();
        for (k, v) in m.range::<Vec<u8>, _>((from.clone(), to.clone())) {
            match v {
                Some(v) => {
                    merged.insert(k.clone(), v.clone());
                }
                None => {
                    merged.remove(k);
                }
            }
        }
        if rev {
            merged.into_iter().rev().take(limit).collect()
        } else {
            merged.into_iter().take(limit).collect()
        }
    }

    /// The statements' data, table by table; empties the overlay.
    pub fn drain(&mut self) -> Vec<Flush> {
        let mut out = Vec::new();
        for (table, m) in std::mem::take(&mut self.tables) {
            let mut f = Flush {
                table,
                put_keys: Vec::new(),
                put_values: Vec::new(),
                deletes: Vec::new(),
            };
            for (k, v) in m {
                match v {
                    Some(v) => {
                        f.put_keys.push(k);
                        f.put_values.push(v);
                    }
                    None => f.deletes.push(k),
                }
            }
            out.push(f);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(keys: &[u8]) -> Rows {
        keys.iter().map(|k| (vec![*k], vec![*k])).collect()
    }

    #[test]
    fn a_range_sees_the_pending_puts_and_deletes_in_order() {
        let t = Table::Scratch;
        let mut o = Overlay::default();
        o.put(t, &[2], &[20]);
        o.delete(t, &[3]);
        o.put(t, &[9], &[90]);
        let all = (Bound::Unbounded, Bound::Unbounded);
        assert_eq!(o.deletes_in(t, &all.0, &all.1), 1);
        // The database holds 1, 3, 5; asked for limit 3 (+1 delete) it gives 1, 3, 5.
        let got = o.merge(t, &all.0, &all.1, false, 3, rows(&[1, 3, 5]));
        assert_eq!(
            got,
            vec![(vec![1], vec![1]), (vec![2], vec![20]), (vec![5], vec![5])]
        );
        let got = o.merge(t, &all.0, &all.1, true, 2, rows(&[5, 3, 1]));
        assert_eq!(got, vec![(vec![9], vec![90]), (vec![5], vec![5])]);
        // Bounds hold for the overlay too.
        let (from, to) = (Bound::Included(vec![4]), Bound::Excluded(vec![9]));
        assert_eq!(o.merge(t, &from, &to, false, 10, rows(&[5])), rows(&[5]));
        assert_eq!(o.get(t, &[3]), Some(None));
        assert_eq!(o.get(t, &[2]), Some(Some(&vec![20])));
        assert_eq!(o.get(t, &[1]), None);
        let flush = o.drain();
        assert_eq!(flush.len(), 1);
        assert_eq!(flush[0].put_keys, vec![vec![2], vec![9]]);
        assert_eq!(flush[0].deletes, vec![vec![3]]);
        assert!(o.is_empty());
    }
}
