//! Migrates the store. A released migration never changes, but for its comments; sqlx checks
//! every applied migration against a checksum of its whole file, comments included, so each
//! comment edit is recorded here with the checksum it replaced, and a store migrated before
//! the edit is re-signed instead of refused.

use sqlx::AnyPool;
use sqlx::migrate::{MigrateError, Migrator};

static SQLITE: Migrator = sqlx::migrate!("src/control/migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("src/control/migrations/postgres");

/// `(version, SHA-384 hex of the file as released)` of the migrations whose comments were
/// edited since (they cited issue numbers).
const SQLITE_EDITED: &[(i64, &str)] = &[
    (
        2,
        "0c05ec0154f71cab939f94ccd83e1a9831b83f6d54f840c7a27f97a7c679dbdeaf48bf32198304f4f2f7688d837e79af",
    ),
    (3, DAILY_USAGE_RELEASED),
    (4, USERS_RELEASED),
    (5, READ_GRANTS_RELEASED),
];
const POSTGRES_EDITED: &[(i64, &str)] = &[
    (
        2,
        "5066aced15399e3c4a6ca368ac02061e6ec21c99944faae79fb2f59ea8ccecbc16427471713881f0a7444afbe33c4d9c",
    ),
    (3, DAILY_USAGE_RELEASED),
    (4, USERS_RELEASED),
    (5, READ_GRANTS_RELEASED),
];
/// The dialects' files for these were the same.
const DAILY_USAGE_RELEASED: &str = "9027e351f7a8382852b5bb8a4137cb7192312dd3f86204081b17e1fc902ee01d009dded7d8cec1073db775b0a28ccb7d";
const USERS_RELEASED: &str = "0db6daad47fbcb877e87e3902a91ebf625fec76175ebd415466a5637de66886ab4643199fa4468fef0f9d3e4be4c44a1";
const READ_GRANTS_RELEASED: &str = "44287893751550ef1d7dd3d1448a280b9a26d566693b75d32c54cdd4c23ef0b70c73f3e2a08e54ba5ec32af6c5671596";

/// Re-signs what a comment edit changed, then applies every migration not applied yet.
pub async fn run(pool: &AnyPool, sqlite: bool) -> Result<(), MigrateError> {
    let (migrator, edited) = match sqlite {
        true => (&SQLITE, SQLITE_EDITED),
        false => (&POSTGRES, POSTGRES_EDITED),
    };
    if migrated_before(pool, sqlite).await? {
        for &(version, released) in edited {
            let Some(now) = migrator.iter().find(|m| m.version == version) else {
                continue;
            };
            let released = hex::decode(released).expect("the checksums above are hex");
            sqlx::query(
                "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
            )
            .bind(now.checksum.to_vec())
            .bind(version)
            .bind(released)
            .execute(pool)
            .await?;
        }
    }
    migrator.run(pool).await
}

/// Whether sqlx's bookkeeping table exists: a new store has nothing to re-sign.
async fn migrated_before(pool: &AnyPool, sqlite: bool) -> Result<bool, sqlx::Error> {
    let sql = match sqlite {
        true => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' \
             AND name = '_sqlx_migrations'"
        }
        false => {
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()"
        }
    };
    let row = sqlx::query(sql).fetch_one(pool).await?;
    Ok(sqlx::Row::try_get::<i64, _>(&row, "n")? > 0)
}
