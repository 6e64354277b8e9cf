//! One panel's pixels in memory: what the renderer draws into (an `embedded-graphics`
//! `DrawTarget`) and what the framebuffer, the PNG bench output and the golden-image tests read.
//! Kept apart from any device I/O so that every screen can be rendered and checked in a test.

use std::convert::Infallible;
use std::ops::Range;

use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;

use super::PanelSize;

/// A monochrome image of one panel: `true` is ink (a dark pixel on a light panel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    size: PanelSize,
    /// One byte per pixel (0 paper, 1 ink), row after row.
    pixels: Vec<u8>,
}

impl Canvas {
    /// A blank (all paper) canvas of `size`.
    pub fn new(size: PanelSize) -> Canvas {
        Canvas {
            size,
            pixels: vec![0; size.pixel_count()],
        }
    }

    pub fn size(&self) -> PanelSize {
        self.size
    }

    /// Back to all paper.
    pub fn clear(&mut self) {
        self.pixels.fill(0);
    }

    /// Whether the pixel at (x, y) is ink; outside the canvas is paper.
    pub fn is_ink(&self, x: u32, y: u32) -> bool {
        self.index(x, y).is_some_and(|i| self.pixels[i] != 0)
    }

    /// Row `y` as one byte per pixel (0 paper, 1 ink); empty outside the canvas.
    pub fn row(&self, y: u32) -> &[u8] {
        let width = self.size.width as usize;
        let start = (y as usize).saturating_mul(width);
        self.pixels
            .get(start..start.saturating_add(width))
            .unwrap_or(&[])
    }

    /// The rows that differ between `self` and `other` (same size), as one span, or `None`
    /// when they are the same image. A canvas of another size differs everywhere.
    pub fn changed_rows(&self, other: &Canvas) -> Option<Range<u32>> {
        if self.size != other.size {
            return Some(0..self.size.height);
        }
        let differs = |y: &u32| self.row(*y) != other.row(*y);
        let first = (0..self.size.height).find(differs)?;
        let last = (0..self.size.height).rev().find(differs)?;
        Some(first..last + 1)
    }

    fn index(&self, x: u32, y: u32) -> Option<usize> {
        (x < self.size.width && y < self.size.height)
            .then(|| y as usize * self.size.width as usize + x as usize)
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.size.width, self.size.height)
    }
}

impl DrawTarget for Canvas {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, color) in pixels {
            let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) else {
                continue;
            };
            if let Some(i) = self.index(x, y) {
                self.pixels[i] = u8::from(color.is_on());
            }
        }
        Ok(())
    }

    fn clear(&mut self, color: Self::Color) -> Result<(), Self::Error> {
        self.pixels.fill(u8::from(color.is_on()));
        Ok(())
    }
}
