#!/usr/bin/env python3
"""Write the image lists of Karpathy's dataset_*.json for scripts/karpathy.mk:

    karpathy-lists.py DATASET_JSON IMAGE_DIR OUT_DIR

OUT_DIR/{train,dev,test}.names: the image file names of the splits train +
restval, val and test, in file order; OUT_DIR/SPLIT.paths: the same images
as IMAGE_DIR/[filepath/]filename.  Each file is written to a temp file and
renamed.
"""
import json
import os
import sys

SPLITS = {"train": ("train", "restval"), "dev": ("val",), "test": ("test",)}


def write(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    with open(argv[1], encoding="utf-8") as f:
        images = json.load(f)["images"]
    for out, splits in SPLITS.items():
        chosen = [img for img in images if img["split"] in splits]
        if not chosen:
            sys.exit("karpathy-lists.py: %s: no image in split %s" % (argv[1], "+".join(splits)))
        write(os.path.join(argv[3], out + ".names"), [img["filename"] for img in chosen])
        write(os.path.join(argv[3], out + ".paths"),
              [os.path.join(argv[2], img.get("filepath", ""), img["filename"]) for img in chosen])


if __name__ == "__main__":
    main(sys.argv)
