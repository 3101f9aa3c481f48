"""The LangChain RAG quickstart as a user would copy it, run by `python -m bench peer` in its
own environment (`make peer`: LangChain pins other versions of shared libraries).

From the LangChain tutorial "Build a RAG app": RecursiveCharacterTextSplitter(1000, 200,
add_start_index=True), HuggingFaceEmbeddings, a Chroma vector store, similarity_search with
its default k=4, the "rlm/rag-prompt" prompt (copied here: the hub is out of reach), the
context joined with blank lines, and a chat model (ChatHuggingFace over HuggingFacePipeline,
greedy). Reads a JSON job on stdin, writes JSON results to the job's "out" file.
"""

import json
import sys
import time
from pathlib import Path

from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate
from langchain_huggingface import ChatHuggingFace, HuggingFaceEmbeddings, HuggingFacePipeline
from langchain_text_splitters import RecursiveCharacterTextSplitter

RAG_PROMPT = ChatPromptTemplate.from_messages([("human", (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved "
    "context to answer the question. If you don't know the answer, just say that you don't "
    "know. Use three sentences maximum and keep the answer concise.\n"
    "Question: {question} \nContext: {context} \nAnswer:"))])  # fmt: skip


def main() -> None:
    job = json.load(sys.stdin)
    started = time.perf_counter()
    docs = [Document(page_content=Path(path).read_text(encoding="utf-8"),
                     metadata={"source": path}) for path in job["files"]]  # fmt: skip
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200,
                                              add_start_index=True)  # fmt: skip
    splits = splitter.split_documents(docs)
    embeddings = HuggingFaceEmbeddings(model_name=job["embedder"])
    vector_store = Chroma(collection_name="quickstart", embedding_function=embeddings)
    vector_store.add_documents(documents=splits)
    index_s = time.perf_counter() - started
    llm = HuggingFacePipeline.from_model_id(
        model_id=job["model"], task="text-generation",
        pipeline_kwargs={"max_new_tokens": job["max_new_tokens"], "do_sample": False,
                         "return_full_text": False},
    )  # fmt: skip
    chat = ChatHuggingFace(llm=llm)
    chat.invoke("Hello")  # loads and warms the model, as a server would before its first user
    answers = []
    for question in job["questions"]:
        began = time.perf_counter()
        retrieved = vector_store.similarity_search(question)
        docs_content = "\n\n".join(doc.page_content for doc in retrieved)
        messages = RAG_PROMPT.invoke({"question": question, "context": docs_content})
        response = chat.invoke(messages)
        answers.append({"answer": response.content, "seconds": time.perf_counter() - began,
                        "context": docs_content,
                        "sources": [d.metadata["source"] for d in retrieved]})  # fmt: skip
    with open(job["out"], "w", encoding="utf-8") as out:
        json.dump({"index_s": index_s, "chunks": len(splits), "answers": answers}, out)


if __name__ == "__main__":
    main()
