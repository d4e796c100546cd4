package media

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
)

// Thumb is a made thumbnail.
type Thumb struct {
	Data          []byte
	ContentType   string
	Width, Height int
}

// maxScaledSide is the longest side CatmullRom scales from; a longer one is sampled down first.
// Within the pixel limit only an image far longer than it is wide has one (WebP's own limit).
const maxScaledSide = 16384

// Thumbnail decodes an image (after checking its header against maxPixels, so a bomb is never
// decoded), turns it upright by its EXIF orientation, and scales it to fit in size × size
// (never up): a JPEG for opaque images, a PNG for those with transparency. The thumbnail holds no
// metadata.
func Thumbnail(src io.Reader, orientation int, size int, maxPixels int64) (Thumb, error) {
	br := bufio.NewReaderSize(src, 256<<10)
	head, _ := br.Peek(256 << 10)
	if _, _, err := Config(head, maxPixels); err != nil {
		return Thumb{}, err
	}
	img, _, err := image.Decode(br)
	if err != nil {
		return Thumb{}, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > size || h > size {
		if w >= h {
			w, h = size, max(1, h*size/b.Dx())
		} else {
			w, h = max(1, w*size/b.Dy()), size
		}
	}
	if b.Dx() > maxScaledSide || b.Dy() > maxScaledSide {
		// CatmullRom's tables and its intermediate picture grow with the source's sides (about
		// 64 bytes a pixel of a long side: 1 GiB for an image of one pixel by ten million,
		// which the pixel limit lets through). A side that long is first brought down to four
		// times the thumbnail's by sampling (no table, nothing the size of the source).
		pre := image.NewRGBA(image.Rect(0, 0, min(b.Dx(), 4*w), min(b.Dy(), 4*h)))
		draw.ApproxBiLinear.Scale(pre, pre.Bounds(), img, b, draw.Src, nil)
		img, b = pre, pre.Bounds()
	}
	scaled := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(scaled, scaled.Bounds(), img, b, draw.Src, nil)
	// Turned upright after scaling: the small picture, not the large one, is copied.
	dst := upright(scaled, orientation)
	var buf bytes.Buffer
	t := Thumb{Width: dst.Bounds().Dx(), Height: dst.Bounds().Dy()}
	if dst.Opaque() {
		t.ContentType = JPEG
		err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 82})
	} else {
		t.ContentType = PNG
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, dst)
	}
	if err != nil {
		return Thumb{}, err
	}
	t.Data = buf.Bytes()
	return t, nil
}

// upright applies an EXIF orientation (2-8) to img.
func upright(img *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ow, oh := w, h
	if Rotated(o) {
		ow, oh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, ow, oh))
	for y := range h {
		for x := range w {
			var dx, dy int
			switch o {
			case 2: // mirrored
				dx, dy = w-1-x, y
			case 3: // rotated 180
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotated 90 clockwise
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // rotated 90 counter-clockwise
				dx, dy = y, w-1-x
			}
			out.SetRGBA(dx, dy, img.RGBAAt(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}
