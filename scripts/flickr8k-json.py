#!/usr/bin/env python3
"""Write a Flickr8k subset as Karpathy's dataset_flickr8k.json and as COCO's
captions_*.json, the two JSON caption formats sat reads (formats/captions.md),
for tests and for trying scripts/coco.mk and scripts/flickr30k.mk on data
that is at hand.

    flickr8k-json.py TOKEN_FILE KARPATHY_OUT COCO_OUT SPLIT=LIST [SPLIT=LIST ...]

Each SPLIT=LIST names a Karpathy split ("train", "val", "test", "restval")
and the list file of its images; images are written in list order, their
captions in the token file's order. The COCO file holds the same images
(ids from 1) and its annotations interleaved across images (one caption of
every image, then the next), which the reader must join back by image_id.
"""
import json
import sys


def read_tokens(path):
    captions = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "\t" not in line:
                continue
            key, text = line.rstrip("\n").split("\t", 1)
            name, _, index = key.partition("#")
            if index.isdigit():
                captions.setdefault(name, []).append(text)
    return captions


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    captions = read_tokens(argv[1])
    images = []
    for arg in argv[4:]:
        split, _, path = arg.partition("=")
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        images += [(name, split) for name in names if name in captions]
    karpathy = {"dataset": "flickr8k", "images": []}
    sentid = 0
    for imgid, (name, split) in enumerate(images):
        sents = []
        for text in captions[name]:
            sents.append({"tokens": text.lower().split(), "raw": text, "imgid": imgid,
                          "sentid": sentid})
            sentid += 1
        karpathy["images"].append({"filename": name, "imgid": imgid, "split": split,
                                   "sentids": [s["sentid"] for s in sents],
                                   "sentences": sents})
    coco = {"info": {"description": "Flickr8k subset"}, "images": [], "annotations": []}
    for i, (name, _) in enumerate(images):
        coco["images"].append({"id": i + 1, "file_name": name, "width": 0, "height": 0})
    most = max(len(captions[name]) for name, _ in images)
    for j in range(most):
        for i, (name, _) in enumerate(images):
            if j < len(captions[name]):
                coco["annotations"].append({"image_id": i + 1, "id": len(coco["annotations"]) + 1,
                                            "caption": captions[name][j]})
    with open(argv[2], "w", encoding="utf-8") as f:
        json.dump(karpathy, f)
    with open(argv[3], "w", encoding="utf-8") as f:
        json.dump(coco, f)


if __name__ == "__main__":
    main(sys.argv)
