#!/bin/sh
# One-shot MinIO set-up (the `minio-init` service): the artifact bucket and a flowml user that may only
# read and write that bucket. Idempotent: re-running changes nothing that exists.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${FLOWML_S3_BUCKET:?}"
: "${FLOWML_S3_ACCESS_KEY_ID:?}" "${FLOWML_S3_SECRET_ACCESS_KEY:?}"

mc alias set store http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "store/$FLOWML_S3_BUCKET"

policy=/tmp/flowml-bucket-policy.json
cat > "$policy" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow",
     "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
     "Resource": ["arn:aws:s3:::$FLOWML_S3_BUCKET"]},
    {"Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::$FLOWML_S3_BUCKET/*"]}
  ]
}
JSON
mc admin policy create store flowml-artifacts "$policy"
mc admin user add store "$FLOWML_S3_ACCESS_KEY_ID" "$FLOWML_S3_SECRET_ACCESS_KEY"
if ! mc admin user info store "$FLOWML_S3_ACCESS_KEY_ID" | grep -q flowml-artifacts; then
  mc admin policy attach store flowml-artifacts --user "$FLOWML_S3_ACCESS_KEY_ID"
fi
echo "bucket $FLOWML_S3_BUCKET ready for $FLOWML_S3_ACCESS_KEY_ID"
