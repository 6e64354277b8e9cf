//! Benchmark of a full redraw of both screens at each common panel size: what the device loop
//! spends when every pixel of both panels changes (the worst case; an ordinary redraw draws one
//! screen and writes only its changed rows), against a raw floor measured in the same run.
//!
//! Run: `cargo bench -p pos-firmware --bench panel_redraw`
//!
//! Prints, per panel size:
//! 1. render: both screens drawn into their in-memory canvases (`render::draw_merchant` and
//!    `draw_customer` with the QR test pattern), mean / p50 / p99;
//! 2. full redraw: render plus every row of both screens converted to the framebuffer's pixels
//!    (XRGB8888, 32 bits; and 1 bit), i.e. everything but the `pwrite` to `/dev/fbN`;
//! 3. the floor: a `memset` of both canvases plus a copy of both screens' framebuffer bytes,
//!    and the ratio full redraw / floor.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pos_firmware::core::Screen;
use pos_firmware::device::panel::fb::PixelFormat;
use pos_firmware::device::panel::render::{draw_customer, draw_merchant, Layout, QrImage};
use pos_firmware::device::panel::{Canvas, PanelSize, QR_TEST_PAYLOAD};

/// Redraws timed per panel size and format (after [`WARM_UP`] untimed ones).
const ROUNDS: usize = 300;
const WARM_UP: usize = 20;

fn screen(text: &str) -> Screen {
    Screen {
        lines: text.split(" | ").map(str::to_string).collect(),
    }
}

/// mean / p50 / p99 in ms.
fn summary(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len() as f64;
    let at = |q: f64| ms(times[((times.len() as f64 * q) as usize).min(times.len() - 1)]);
    (mean, at(0.5), at(0.99))
}

fn time(mut run: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..WARM_UP {
        run();
    }
    let times = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    summary(times)
}

fn main() {
    let merchant = screen("机号0001 联机 待核1 | 交易成功 | ¥4.50 | 余额 ¥95.50");
    let customer = screen("交易成功 ¥4.50 | ¥95.50");
    let qr = QrImage::encode(QR_TEST_PAYLOAD.as_bytes()).unwrap();
    println!("full redraw of both screens, {ROUNDS} rounds; ms mean / p50 / p99");
    for size in [PanelSize::SMALL, PanelSize::MEDIUM, PanelSize::LARGE] {
        let layout = Layout::new(size);
        let mut canvases = [Canvas::new(size), Canvas::new(size)];
        let render = |canvases: &mut [Canvas; 2]| {
            draw_merchant(&layout, &merchant, &mut canvases[0]);
            draw_customer(&layout, &customer, Some(&qr), &mut canvases[1]);
        };
        let rendered = time(|| render(black_box(&mut canvases)));
        println!(
            "{size}: render {:.3} / {:.3} / {:.3}",
            rendered.0, rendered.1, rendered.2
        );
        for (name, format) in [
            ("32 bpp", PixelFormat::XRGB8888),
            ("1 bpp", PixelFormat::Mono { ink_bit: true }),
        ] {
            let mut out = Vec::with_capacity(size.pixel_count() * 4);
            let full = time(|| {
                render(&mut canvases);
                out.clear();
                for canvas in &canvases {
                    for y in 0..size.height {
                        format.encode_row(canvas.row(y), &mut out);
                    }
                }
                black_box(&out);
            });
            let fb_bytes = out.len();
            let source = vec![0x55u8; fb_bytes];
            let mut scratch = vec![0u8; size.pixel_count() * 2];
            let mut target = vec![0u8; fb_bytes];
            let floor = time(|| {
                black_box(&mut scratch).fill(0);
                black_box(&mut target).copy_from_slice(black_box(&source));
            });
            println!(
                "{size} {name}: full redraw {:.3} / {:.3} / {:.3}; floor (memset + copy of {} \
                 KiB) {:.4} / {:.4} / {:.4}; ratio (mean) {:.0}x",
                full.0,
                full.1,
                full.2,
                fb_bytes / 1024,
                floor.0,
                floor.1,
                floor.2,
                full.0 / floor.0
            );
        }
    }
}
