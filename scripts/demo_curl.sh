#!/usr/bin/env bash
# The face-gallery story with nothing but curl, against a running `frugalsense serve`.
#   FS_KEY=fs_... bash scripts/demo_curl.sh [PHOTO_FOLDER]
# PHOTO_FOLDER holds the face_recognition example photos (default: ../shared/eval/faces-gallery/examples).
set -euo pipefail
url=${FS_URL:-http://127.0.0.1:8000}
key=${FS_KEY:?set FS_KEY to an API key (printed by the first start of frugalsense serve)}
photos=${1:-../shared/eval/faces-gallery/examples}
auth="Authorization: Bearer $key"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
show() { python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps(d, indent=1)[:${1:-600}])"; }

echo "== a collection and two people"
col=$(curl -sf -H "$auth" -H 'content-type: application/json' -d "{\"name\":\"staff-$(date +%s)\"}" "$url/v1/collections" | field "['id']")
barack=$(curl -sf -H "$auth" -H 'content-type: application/json' -d '{"name":"Barack"}' "$url/v1/collections/$col/persons" | field "['id']")
joe=$(curl -sf -H "$auth" -H 'content-type: application/json' -d '{"name":"Joe"}' "$url/v1/collections/$col/persons" | field "['id']")

echo "== enrol one photo each (every response carries its cost)"
curl -sf -H "$auth" -F file=@"$photos/knn_examples/train/obama/obama.jpg" "$url/v1/persons/$barack/faces" | field "['receipt']['cpu_seconds']"
curl -sf -H "$auth" -F file=@"$photos/knn_examples/train/biden/biden.jpg" "$url/v1/persons/$joe/faces" | field "['receipt']['cpu_seconds']"

echo "== identify them in new photos"
curl -sf -H "$auth" -F file=@"$photos/knn_examples/test/obama1.jpg" "$url/v1/collections/$col/identify" | field "['faces'][0]['name']"
curl -sf -H "$auth" -F file=@"$photos/knn_examples/train/biden/biden2.jpg" "$url/v1/collections/$col/identify" | field "['faces'][0]['name']"

echo "== a stranger is unknown"
stranger=$(curl -sf -H "$auth" -F file=@"$photos/lin-manuel-miranda.png" "$url/v1/collections/$col/identify")
echo "$stranger" | field "['faces'][0]['decision']"
face=$(echo "$stranger" | field "['faces'][0]['face_id']")

echo "== correct it: that face is a new person, Lin; the next photo of him is named"
lin=$(curl -sf -H "$auth" -H 'content-type: application/json' -d '{"name":"Lin"}' "$url/v1/collections/$col/persons" | field "['id']")
curl -sf -H "$auth" -H 'content-type: application/json' -d "{\"is_person\":\"$lin\"}" "$url/v1/faces/$face/corrections" >/dev/null
curl -sf -H "$auth" -F file=@"$photos/lin-manuel-miranda.png" -F keep=false "$url/v1/collections/$col/identify" | field "['faces'][0]['name']"

echo "== delete Joe: his faces and embeddings are erased, and he is no longer found"
curl -sf -X DELETE -H "$auth" "$url/v1/persons/$joe" | show 300
curl -sf -H "$auth" -F file=@"$photos/knn_examples/train/biden/biden2.jpg" -F keep=false "$url/v1/collections/$col/identify" | field "['faces'][0]['decision']"

echo "== the cost of one identify, from the response header"
curl -s -o /dev/null -D - -H "$auth" -F file=@"$photos/knn_examples/test/obama1.jpg" -F keep=false "$url/v1/collections/$col/identify" | grep -i x-cost-receipt
