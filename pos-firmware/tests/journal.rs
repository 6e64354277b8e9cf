//! exploration (temporary)
use pos_firmware::journal::*;
use shared::record::*;
use shared::*;
use std::path::Path;

fn rec(seq: u64) -> JournalRecord {
    JournalRecord { seq: Seq(seq), at: UnixMillis(1_700_000_000_000 + seq as i64), machine: MachineNumber::FACTORY_DEFAULT,
        body: RecordBody::ModeChanged(ModeChange::FixedPriceOn(Fen::new(seq))) }
}
fn snap(next: u64) -> TillSnapshot { let mut s = TillSnapshot::factory_new(); s.next_seq = Seq(next); s }

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() { let e = e.unwrap(); let p = e.path();
        if p.is_dir() { copy_dir(&p, &to.join(e.file_name())) } else { std::fs::copy(&p, to.join(e.file_name())).unwrap(); } }
}

#[test]
fn explore() {
    let base = tempfile::tempdir().unwrap();
    let n: u64 = std::env::var("N").map(|v| v.parse().unwrap()).unwrap_or(200);
    {
        let mut j = Journal::open(base.path()).unwrap();
        for s in 1..=n/2 { j.append(&rec(s), &snap(s + 1)).unwrap(); }
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    {
        let mut j = Journal::open(base.path()).unwrap();
        for s in n/2+1..=n { j.append(&rec(s), &snap(s + 1)).unwrap(); }
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    drop(Journal::open(base.path()).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(100));
    for e in std::fs::read_dir(base.path()).unwrap() { let e = e.unwrap(); println!("{:?} {}", e.file_name(), e.metadata().unwrap().len()); }
    let len = std::fs::metadata(base.path().join("db")).unwrap().len();
    let mut cases: Vec<(String, Box<dyn Fn(&Path)>)> = vec![];
    for frac in 0..40u64 {
        let off = len * frac / 40;
        for pat in [0x00u8, 0xFF, 0x5A] {
            cases.push((format!("4k {pat:02x} at {off}"), Box::new(move |d: &Path| {
                use std::os::unix::fs::FileExt;
                let f = std::fs::OpenOptions::new().write(true).open(d.join("db")).unwrap();
                let l = 4096.min(len - off) as usize;
                f.write_all_at(&vec![pat; l], off).unwrap();
            })));
        }
        cases.push((format!("flip at {off}"), Box::new(move |d: &Path| {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().read(true).write(true).open(d.join("db")).unwrap();
            let mut b = [0u8]; f.read_exact_at(&mut b, off).unwrap(); b[0] ^= 0x40; f.write_all_at(&b, off).unwrap();
        })));
        cases.push((format!("truncate to {off}"), Box::new(move |d: &Path| {
            let f = std::fs::OpenOptions::new().write(true).open(d.join("db")).unwrap(); f.set_len(off).unwrap();
        })));
    }
    cases.push(("delete conf".into(), Box::new(|d: &Path| std::fs::remove_file(d.join("conf")).unwrap())));
    cases.push(("garbage conf".into(), Box::new(|d: &Path| std::fs::write(d.join("conf"), b"segment_size: banana\nxxxxxxxxxxxxxxxxxxx").unwrap())));
    cases.push(("delete db".into(), Box::new(|d: &Path| std::fs::remove_file(d.join("db")).unwrap())));
    cases.push(("delete hwm".into(), Box::new(|d: &Path| std::fs::remove_file(d.join("journal.hwm")).unwrap())));
    cases.push(("delete snaps".into(), Box::new(|d: &Path| for e in std::fs::read_dir(d).unwrap() { let p = e.unwrap().path(); if p.file_name().unwrap().to_string_lossy().starts_with("snap.") { std::fs::remove_file(p).unwrap() } })));
    cases.push(("garbage snaps".into(), Box::new(|d: &Path| for e in std::fs::read_dir(d).unwrap() { let p = e.unwrap().path(); if p.file_name().unwrap().to_string_lossy().starts_with("snap.") { std::fs::write(p, vec![0x33u8; 100]).unwrap() } })));
    for (name, f) in cases {
        let t = tempfile::tempdir().unwrap();
        copy_dir(base.path(), t.path());
        f(t.path());
        let r = Journal::open(t.path());
        match r {
            Ok(j) => { let got: Vec<_> = j.records_from(Seq::FIRST).collect(); let ok = got.iter().filter(|r| r.is_ok()).count();
                println!("{name}: OK last={:?} records_ok={ok} errs={}", j.last_seq(), got.len() - ok); }
            Err(e) => println!("{name}: ERR {}", e.to_string().split(": ").skip(1).collect::<Vec<_>>().join(": ").chars().take(90).collect::<String>()),
        }
    }
}
