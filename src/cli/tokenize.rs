//! `pae-local tokenize`.

use clap::Args;

use super::args::ModelArgs;
use super::printer;

#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// The text to tokenize.
    text: String,
    /// Prepend BOS when the model asks for it (llama.cpp's default for prompts).
    #[arg(long)]
    add_bos: bool,
    /// Treat special tokens such as <|im_start|> as plain text.
    #[arg(long)]
    no_special: bool,
    /// Print a JSON object with ids and pieces.
    #[arg(long)]
    json: bool,
}

pub fn run(margs: &ModelArgs, args: TokenizeArgs) -> anyhow::Result<()> {
    let path = pae_local::source::resolve(margs.model.as_deref())?;
    let header = pae_local::model::GgufHeader::read_path(&path)?;
    let tok = pae_local::model::Tokenizer::load(&header, &path)?;
    let ids = tok.encode(&args.text, args.add_bos, !args.no_special)?;
    if args.json {
        let pieces: Vec<String> = ids
            .iter()
            .map(|&i| String::from_utf8_lossy(tok.token_bytes(i)).into_owned())
            .collect();
        printer::json(&serde_json::json!({ "ids": ids, "pieces": pieces }))?;
    } else {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        printer::line(&format!("[{}]", list.join(", ")))?;
    }
    Ok(())
}
