"""Where artifacts live: local directories, Google Cloud Storage (gs://) and S3-compatible stores (s3://,
MinIO): which locations are accepted (locations), and TensorFlow's s3:// filesystem in every process
(filesystems)."""
