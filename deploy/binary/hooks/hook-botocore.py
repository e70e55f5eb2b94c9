# Replaces pyinstaller-hooks-contrib's hook for botocore, which packs the
# models of every AWS service (27 MB): gortc talks to S3 only (storage.url),
# so only S3's model, the endpoint and retry tables and the CA bundle go in.
from PyInstaller.utils.hooks import collect_data_files

hiddenimports = ["html.parser"]
datas = collect_data_files(
    "botocore",
    includes=["data/*.json", "data/s3/**/*", "cacert.pem"],
)
