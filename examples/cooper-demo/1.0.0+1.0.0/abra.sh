# config versions: bump when the file changes
export INDEX_VERSION=v1
